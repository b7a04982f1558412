package protocol

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// Report says what a Sync call did.
type Report struct {
	Peer     peer.ID
	Scopes   []ScopeReport
	Duration time.Duration
}

// ScopeReport is the outcome of one scope of a Sync call.
type ScopeReport struct {
	Scope reconcile.Scope
	// Need and Have are the sizes of the difference: messages we lacked,
	// and messages the peer lacked.
	Need, Have int
	// Received messages were fetched or streamed, verified and stored
	// (new to the store); Rejected ones failed verification; Sent ones
	// the peer pulled from us.
	Received, Rejected, Sent int
	// Streamed counts the messages a catch-up stream delivered: new,
	// held already, or rejected.
	Streamed int
	// Bytes both ways on the wire, reconciliation and transfer.
	Bytes int64
	// RoundTrips of reconciliation.
	RoundTrips int
	Duration   time.Duration
	// Err is the scope's failure, if any (for example
	// ErrUnsupportedScope); other scopes of the call are unaffected.
	Err error
}

// add accumulates another step's outcome for the same scope (a catch-up,
// another session): counts and bytes add up, and a failure is kept.
func (r *ScopeReport) add(o ScopeReport) {
	r.Need += o.Need
	r.Have += o.Have
	r.Received += o.Received
	r.Rejected += o.Rejected
	r.Sent += o.Sent
	r.Streamed += o.Streamed
	r.Bytes += o.Bytes
	r.RoundTrips += o.RoundTrips
	r.Duration += o.Duration
	if o.Err != nil {
		r.Err = o.Err
	}
}

// Received returns the messages received over all scopes.
func (r *Report) Received() int {
	n := 0
	for _, s := range r.Scopes {
		n += s.Received
	}
	return n
}

// Err returns the first scope error, if any.
func (r *Report) Err() error {
	for _, s := range r.Scopes {
		if s.Err != nil {
			return s.Err
		}
	}
	return nil
}
