package protocol

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"
	logging "github.com/libp2p/go-libp2p/gologshim"

	"github.com/storesync/storesync/protocol/internal/lifecycle"
	"github.com/storesync/storesync/reconcile"
)

const (
	// SyncID is the reconciliation protocol: a client opens a session
	// for some scopes, the two sides exchange reconcile frames until both
	// know the difference, and the server may then pull what it lacks.
	// Version 3.1 adds the MATCH item (a stuck group of the sketch named
	// by its cells); a client that reaches a server of version 3.0 runs
	// its sessions without it (reconcile.Session.WithoutMatch).
	SyncID protocol.ID = "/storesync/sync/3.1.0"
	// SyncID30 is the reconciliation protocol without MATCH, which the
	// service serves too and falls back to as a client.
	SyncID30 protocol.ID = "/storesync/sync/3.0.0"
	// FetchID is the transfer protocol: the client asks for messages by
	// hash, in batches, and the server answers with the ones it holds.
	FetchID protocol.ID = "/storesync/fetch/2.0.0"
	// CatchUpID is the bulk transfer protocol: the client asks for a
	// scope's messages in key order from a cursor, and the server streams
	// them in batches.
	CatchUpID protocol.ID = "/storesync/catchup/1.0.0"
	// ServiceName is the resource manager service of both protocols.
	ServiceName = "storesync"
)

var log = logging.Logger("storesync/protocol")

// Store is what the protocol needs of a node's message store. It must be
// safe for concurrent use.
type Store interface {
	// ScopeByID returns the kept scope with this ID (reconcile.Scope.ID).
	ScopeByID(id [8]byte) (reconcile.Scope, bool)
	// Set returns the key set (the tree) of a kept scope.
	Set(sc reconcile.Scope) (reconcile.Set, bool)
	// Get returns the stored messages with these keys, in the same
	// order, nil where absent.
	Get(ctx context.Context, sc reconcile.Scope, keys []reconcile.Key) ([]*reconcile.Message, error)
	// Has reports whether the message with this key is stored.
	Has(ctx context.Context, sc reconcile.Scope, k reconcile.Key) (bool, error)
	// Put stores messages the protocol has verified and returns how many
	// were new.
	Put(ctx context.Context, msgs []reconcile.Message) (int, error)
}

// ScopeCounter is a Store that can tell a scope's message count without
// reading its tree (which a node's store may first bring up to date,
// writing the keys its recent commits left pending). The service uses
// it, where the store has it, to check a fetch request against the
// peer's volume (WithCatchUpVolume), so that fetch requests cannot make
// the store write its trees more often.
type ScopeCounter interface {
	// ScopeCount returns the number of messages of a kept scope.
	ScopeCount(sc reconcile.Scope) (uint64, bool)
}

// CatchUpStore is a Store that can also serve and take catch-up streams
// (CatchUpID): read a scope in key order, and store a batch together with
// the progress of the range it belongs to. Over a Store without it the
// service neither serves catch-up nor asks for it: every scope is
// reconciled. Its methods must be safe for concurrent use.
type CatchUpStore interface {
	Store
	// Scan calls fn with the stored messages of sc whose keys are in
	// (after, until), in key order: each message's key and its wire
	// encoding (pb.Message bytes, valid only during the call). It stops
	// at fn's first error and returns it.
	Scan(ctx context.Context, sc reconcile.Scope, after, until reconcile.Key, fn func(k reconcile.Key, raw []byte) error) error
	// PutCatchUp stores messages of sc the protocol has verified and
	// saves the cursors (deleting those that are Done), all in one
	// atomic commit, and returns how many messages were new. keys[i] is
	// msgs[i]'s key, which the protocol computed from its content while
	// verifying it; a store may take it rather than hash again.
	PutCatchUp(ctx context.Context, sc reconcile.Scope, msgs []reconcile.Message, keys []reconcile.Key, cursors ...Cursor) (int, error)
	// Cursors returns the saved cursors of sc, in key order of their
	// ranges.
	Cursors(ctx context.Context, sc reconcile.Scope) ([]Cursor, error)
}

// Service runs both protocols on a host: New registers the handlers,
// Close removes them and waits for everything the service started. Sync
// is the client side. Safe for concurrent use.
type Service struct {
	h     host.Host
	store Store
	cfg   config
	log   *slog.Logger

	sessions *limiter // server sessions, per peer and in total
	fetches  *limiter // server fetch streams, per peer and in total
	catchUps *limiter // server catch-up streams, per peer and in total
	volume   *volume  // messages sent by catch-up and fetch, per peer and scope
	pulls    chan struct{}
	strikes  *strikes

	catchMu  sync.Mutex // guards catching
	catching map[reconcile.Scope]chan struct{}

	ctx      context.Context
	cancel   context.CancelFunc
	handlers lifecycle.Handlers
}

// New mounts the protocols on h, serving and syncing the scopes of store.
func New(h host.Host, store Store, opts ...Option) (*Service, error) {
	cfg := defaults()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.params.Validate(); err != nil {
		return nil, err
	}
	if cfg.maxMessageSize > cfg.maxBatchBytes-messageFraming {
		return nil, fmt.Errorf("storesync: maximum message size %d does not fit a batch of %d bytes: messages that large could be stored but never transferred",
			cfg.maxMessageSize, cfg.maxBatchBytes)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		h: h, store: store, cfg: cfg, log: cfg.logger,
		sessions: newLimiter(cfg.maxSessionsPerPeer, cfg.maxSessions, newRates(cfg.sessionRate, cfg.now)),
		fetches:  newLimiter(cfg.maxSessionsPerPeer, cfg.maxSessions, newRates(cfg.fetchRate, cfg.now)),
		catchUps: newLimiter(cfg.maxSessionsPerPeer, cfg.maxSessions, newRates(cfg.catchUpRate, cfg.now)),
		volume:   newVolume(cfg.volumeFactor, cfg.volumeFloor, cfg.volumeWindow, cfg.now),
		pulls:    make(chan struct{}, cfg.maxPulls),
		strikes:  newStrikes(cfg.maxStrikes, cfg.refuseFor, cfg.now),
		catching: make(map[reconcile.Scope]chan struct{}),
		ctx:      ctx, cancel: cancel,
	}
	h.SetStreamHandler(SyncID, s.handleSync)
	h.SetStreamHandler(SyncID30, s.handleSync)
	h.SetStreamHandler(FetchID, s.handleFetch)
	if _, ok := store.(CatchUpStore); ok {
		h.SetStreamHandler(CatchUpID, s.handleCatchUp)
	}
	return s, nil
}

// Close unregisters the handlers, cancels every session and pull the
// service runs and waits for them.
func (s *Service) Close() error {
	s.h.RemoveStreamHandler(SyncID)
	s.h.RemoveStreamHandler(SyncID30)
	s.h.RemoveStreamHandler(FetchID)
	s.h.RemoveStreamHandler(CatchUpID)
	s.handlers.Stop()
	s.cancel()
	s.handlers.Wait()
	return nil
}

// Host returns the host the service is mounted on.
func (s *Service) Host() host.Host { return s.h }
