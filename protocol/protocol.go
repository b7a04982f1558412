package protocol

import (
	"context"
	"log/slog"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"
	logging "github.com/libp2p/go-libp2p/gologshim"

	"github.com/storesync/storesync/reconcile"
)

const (
	// SyncID is the reconciliation protocol: a client opens a session
	// for some scopes, the two sides exchange reconcile frames until both
	// know the difference, and the server may then pull what it lacks.
	SyncID protocol.ID = "/storesync/sync/1.0.0"
	// FetchID is the transfer protocol: the client asks for messages by
	// hash, in batches, and the server answers with the ones it holds.
	FetchID protocol.ID = "/storesync/fetch/1.0.0"
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
	// Get returns the stored messages with these hashes, in the same
	// order, nil where absent.
	Get(ctx context.Context, sc reconcile.Scope, hashes []reconcile.Hash) ([]*reconcile.Message, error)
	// Has reports whether a message is stored.
	Has(ctx context.Context, sc reconcile.Scope, h reconcile.Hash) (bool, error)
	// Put stores messages the protocol has verified and returns how many
	// were new.
	Put(ctx context.Context, msgs []reconcile.Message) (int, error)
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
	pulls    chan struct{}
	strikes  *strikes

	ctx     context.Context
	cancel  context.CancelFunc
	closeMu sync.Mutex // orders track's wg.Add before Close's Wait
	wg      sync.WaitGroup
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
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		h: h, store: store, cfg: cfg, log: cfg.logger,
		sessions: newLimiter(cfg.maxSessionsPerPeer, cfg.maxSessions),
		fetches:  newLimiter(cfg.maxSessionsPerPeer, cfg.maxSessions),
		pulls:    make(chan struct{}, cfg.maxPulls),
		strikes:  newStrikes(cfg.maxStrikes, cfg.refuseFor, cfg.now),
		ctx:      ctx, cancel: cancel,
	}
	h.SetStreamHandler(SyncID, s.handleSync)
	h.SetStreamHandler(FetchID, s.handleFetch)
	return s, nil
}

// Close unregisters the handlers, cancels every session and pull the
// service runs and waits for them.
func (s *Service) Close() error {
	s.h.RemoveStreamHandler(SyncID)
	s.h.RemoveStreamHandler(FetchID)
	s.closeMu.Lock()
	s.cancel()
	s.closeMu.Unlock()
	s.wg.Wait()
	return nil
}

// Host returns the host the service is mounted on.
func (s *Service) Host() host.Host { return s.h }
