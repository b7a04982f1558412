package gossip

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// ScopeState is what gossip needs to know of a local scope.
type ScopeState struct {
	Root   reconcile.Fingerprint
	Count  uint64
	Newest int64
	// LastAdded is when a message last arrived in the scope, from any
	// source; zero if never.
	LastAdded time.Time
}

// Store is the read side of the local message store. Safe for
// concurrent use.
type Store interface {
	State(sc reconcile.Scope) (ScopeState, bool)
	Has(ctx context.Context, sc reconcile.Scope, k reconcile.Key) (bool, error)
}

// Syncer runs protocol sessions: *protocol.Service is one. Safe for
// concurrent use.
type Syncer interface {
	Sync(ctx context.Context, p peer.ID, scopes ...reconcile.Scope) (*protocol.Report, error)
	Fetch(ctx context.Context, p peer.ID, sc reconcile.Scope, keys []reconcile.Key) (protocol.ScopeReport, error)
	// CatchUp streams a scope from several peers at once: how a member
	// with an empty scope catches up from the members that hold it.
	CatchUp(ctx context.Context, sc reconcile.Scope, peers ...peer.ID) (protocol.ScopeReport, error)
}

// Topic is the seam between the gossip logic and GossipSub: a group's
// announcements go out through Publish and come in through Next, already
// validated. Tests substitute topics that drop or delay announcements.
type Topic interface {
	Publish(ctx context.Context, data []byte) error
	// Next returns the next announcement and its author.
	Next(ctx context.Context) (from peer.ID, data []byte, err error)
	// Peers returns the peers known to be in the topic.
	Peers() []peer.ID
	// NextJoin returns the next peer that joins the topic.
	NextJoin(ctx context.Context) (peer.ID, error)
	Close() error
}

// Network joins group topics. validate is the topic validator: it gets
// each message's author and data, and an error rejects the message
// before it is delivered or forwarded.
type Network interface {
	Join(topic string, validate func(from peer.ID, data []byte) error) (Topic, error)
}
