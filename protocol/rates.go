package protocol

import (
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// rates bounds how often streams of one kind start: per peer, and in
// total at globalRateFactor times the per-peer rate, each a token bucket
// holding a minute's worth; the total bounds only peers that have spent
// a quarter of their own. A peer's bucket untouched for a minute is
// full, the same as none, so it is forgotten; at most maxTracked peers
// are tracked, the least recently seen giving way. A small leaf
// structure behind its own mutex.
type rates struct {
	mu       sync.Mutex
	perMin   float64 // per peer; 0: unlimited
	now      func() time.Time
	peers    peerTimes[float64]
	global   float64 // tokens of the global bucket
	globalAt time.Time
}

// globalRateFactor is how many peers' worth of streams may start a minute
// in total.
const globalRateFactor = 16

// errRate is the detail of the ErrBusy a stream over its rate gets.
var errRate = errors.New("too many streams a minute")

func newRates(perMin int, now func() time.Time) *rates {
	return &rates{perMin: float64(perMin), now: now, peers: newPeerTimes[float64](),
		global: float64(perMin) * globalRateFactor, globalAt: now()}
}

// take spends a token of p's bucket and of the global one, or returns an
// error wrapping ErrBusy.
func (r *rates) take(p peer.ID) error {
	if r == nil || r.perMin == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.peers.expire(now.Add(-time.Minute))
	tokens, at, ok := r.peers.getAt(p)
	if !ok {
		tokens = r.perMin
	} else {
		tokens = min(r.perMin, tokens+r.refill(at, now, 1))
	}
	global := min(r.perMin*globalRateFactor, r.global+r.refill(r.globalAt, now, globalRateFactor))
	r.global, r.globalAt = global, now
	// The global bucket refuses only peers that have spent a quarter of
	// their own: peers opening streams as fast as they may would
	// otherwise empty it for everyone, and a peer that keeps to a
	// fraction of its rate would find itself refused for their sake.
	light := tokens >= r.perMin*3/4
	if tokens < 1 || (global < 1 && !light) {
		r.peers.set(p, tokens, now, maxTracked)
		return errors.Join(ErrBusy, errRate)
	}
	r.global = max(r.global-1, 0)
	r.peers.set(p, tokens-1, now, maxTracked)
	return nil
}

// refill returns the tokens a bucket of factor times the per-peer rate
// gains from at to now.
func (r *rates) refill(at, now time.Time, factor float64) float64 {
	return now.Sub(at).Minutes() * r.perMin * factor
}
