package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	logging "github.com/libp2p/go-libp2p/gologshim"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

var log = logging.Logger("storesync/node")

// Node is a ready store node: a libp2p host, a message store in a
// go-datastore, and the sync protocol mounted on the host. New starts
// it, Close stops it. Safe for concurrent use.
type Node struct {
	host    host.Host
	ownHost bool
	closeDS io.Closer
	store   *Store
	sync    *protocol.Service
	gossip  *gossip.Service
	log     *slog.Logger
	closers []func() error

	mu       sync.Mutex // guards lastSync and groups
	lastSync map[reconcile.Scope]SyncRecord
	groups   map[string]gossip.Group

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// snapshots counts exports and imports; nil without WithMetrics.
	snapshots *snapshotMetrics
	// waku counts relayed messages and Store v3 queries; nil without
	// WithMetrics.
	waku *wakuMetrics
}

// SyncRecord is the last successful sync of a scope.
type SyncRecord struct {
	Peer peer.ID
	At   time.Time
	// Received and Sent in that sync.
	Received, Sent int
}

// New builds and starts a node. Whatever New opened is closed again if
// it fails.
func New(ctx context.Context, opts ...Option) (*Node, error) {
	var cfg config
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	n := &Node{lastSync: make(map[reconcile.Scope]SyncRecord), groups: make(map[string]gossip.Group), log: log}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if cfg.logger != nil {
		n.log = cfg.logger
	}
	if err := n.start(ctx, &cfg); err != nil {
		// Whatever start opened is closed again; the error is the one
		// the caller needs, so a failure to close is only logged.
		if cerr := n.Close(); cerr != nil {
			n.log.Debug("closing after a failed start", "err", cerr)
		}
		return nil, err
	}
	n.log.Info("store node started", "peer", n.host.ID(), "scopes", len(n.store.Scopes()))
	return n, nil
}

// start opens and starts what the configuration asks for, in order; New
// releases it all again if start fails.
func (n *Node) start(ctx context.Context, cfg *config) error {
	d, err := n.openDatastore(cfg)
	if err != nil {
		return err
	}
	if n.store, err = OpenStore(ctx, d, cfg.storeOpts...); err != nil {
		return err
	}
	for _, sc := range cfg.scopes {
		if err := n.store.AddScope(ctx, sc); err != nil {
			return err
		}
	}
	if err := n.openHost(cfg); err != nil {
		return err
	}
	popts := append([]protocol.Option{protocol.WithAuthorizer(n.authorize),
		protocol.WithMaxMessageSize(n.store.cfg.maxMessageSize),
		protocol.WithMaxClockSkew(n.store.cfg.maxClockSkew)}, cfg.protocolOpts...)
	if cfg.logger != nil {
		popts = append(popts, protocol.WithLogger(cfg.logger))
	}
	if cfg.registerer != nil {
		popts = append(popts, protocol.WithMetricsTracer(protocol.NewMetricsTracer(protocol.WithRegisterer(cfg.registerer))))
		if err := cfg.registerer.Register(newStoreCollector(n.store)); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
		if n.snapshots, err = newSnapshotMetrics(cfg.registerer); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
		if n.waku, err = newWakuMetrics(cfg.registerer); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	if n.sync, err = protocol.New(n.host, protocolStore{n.store}, popts...); err != nil {
		return err
	}
	if err := n.startWakuStore(cfg); err != nil {
		return err
	}
	if err := n.startMetadata(cfg); err != nil {
		return err
	}
	if err := n.startGossip(ctx, cfg); err != nil {
		return err
	}
	if cfg.mdnsTag != "" {
		if err := n.startMDNS(cfg.mdnsTag); err != nil {
			return fmt.Errorf("node: start mdns: %w", err)
		}
	}
	if cfg.retention > 0 {
		n.goRetention(cfg.retention, cfg.retentionEvery)
	}
	if len(cfg.peers) > 0 {
		n.goBootstrap(cfg.peers)
	}
	n.goWarmSketches()
	return nil
}

func (n *Node) openDatastore(cfg *config) (ds.Batching, error) {
	switch {
	case cfg.datastore != nil:
		return cfg.datastore, nil
	case cfg.dataDir != "":
		d, err := OpenLevelDB(filepath.Join(cfg.dataDir, "datastore"))
		if err != nil {
			return nil, err
		}
		if c, ok := d.(io.Closer); ok {
			n.closeDS = c
		}
		return d, nil
	}
	return nil, errors.New("node: no datastore: give WithDatastore or WithDataDir")
}

func (n *Node) openHost(cfg *config) error {
	if cfg.host != nil {
		if cfg.mplex {
			return errMplexOnGivenHost
		}
		n.host = cfg.host
		return nil
	}
	listen := cfg.listen
	if len(listen) == 0 {
		listen = []string{"/ip4/0.0.0.0/tcp/0"}
	}
	if err := checkListenAddrs(listen); err != nil {
		return fmt.Errorf("node: start host: %w", err)
	}
	lopts := append([]libp2p.Option{libp2p.ListenAddrStrings(listen...)}, muxerOptions(cfg)...)
	if cfg.identity != nil {
		lopts = append(lopts, libp2p.Identity(cfg.identity))
	}
	h, err := libp2p.New(lopts...)
	if err != nil {
		return fmt.Errorf("node: start host: %w", err)
	}
	n.host, n.ownHost = h, true
	return nil
}

// Close stops the node: it waits for its background work, unmounts the
// protocol, and closes the store, then what the node opened itself (its
// host and its LevelDB).
func (n *Node) Close() error {
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	return n.release()
}

func (n *Node) release() error {
	if n.cancel != nil {
		n.cancel() // stops GossipSub, which runs on the node's context
	}
	var errs []error
	for _, c := range n.closers {
		errs = append(errs, c())
	}
	if n.gossip != nil {
		errs = append(errs, n.gossip.Close())
	}
	if n.sync != nil {
		errs = append(errs, n.sync.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.ownHost && n.host != nil {
		errs = append(errs, n.host.Close())
	}
	if n.closeDS != nil {
		errs = append(errs, n.closeDS.Close())
	}
	return errors.Join(errs...)
}

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Store returns the node's message store.
func (n *Node) Store() *Store { return n.store }

// Protocol returns the node's sync service.
func (n *Node) Protocol() *protocol.Service { return n.sync }

// Addrs returns the node's full multiaddrs, each ending in /p2p/<peer ID>.
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// Put stores messages, as Store.Put does, and, if recent announcements
// are on, announces the added ones to the groups that keep their scopes.
func (n *Node) Put(ctx context.Context, msgs ...reconcile.Message) (PutResult, error) {
	res, err := n.store.Put(ctx, msgs...)
	if n.gossip != nil {
		n.gossip.NoteAdded(res.Added)
	}
	return res, err
}

// Query pages through a scope, as Store.Query does.
func (n *Node) Query(ctx context.Context, q Query) (Page, error) { return n.store.Query(ctx, q) }

// Subscribe delivers every message added from now on, whatever its source
// (Put or sync), as Store.Subscribe does.
func (n *Node) Subscribe(ctx context.Context, buffer int) *Subscription {
	return n.store.Subscribe(ctx, buffer)
}

// Connect connects the node's host to a peer.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error { return n.host.Connect(ctx, ai) }

// SyncNow syncs the given scopes (every kept scope if none) with p now,
// and records the outcome for Status.
func (n *Node) SyncNow(ctx context.Context, p peer.ID, scopes ...reconcile.Scope) (*protocol.Report, error) {
	if len(scopes) == 0 {
		scopes = n.store.Scopes()
	}
	rep, err := n.sync.Sync(ctx, p, scopes...)
	if rep != nil {
		n.mu.Lock()
		for _, s := range rep.Scopes {
			if s.Err == nil && err == nil {
				n.lastSync[s.Scope] = SyncRecord{Peer: p, At: time.Now(), Received: s.Received, Sent: s.Sent}
			}
		}
		n.mu.Unlock()
	}
	return rep, err
}

// CatchUp streams a scope from peers in key order, in parallel when there
// are several, resumably, then syncs it with one of them
// (protocol.Service.CatchUp). It is the way in for an empty store: Sync
// streams an empty scope by itself too, but from one peer.
func (n *Node) CatchUp(ctx context.Context, sc reconcile.Scope, peers ...peer.ID) (protocol.ScopeReport, error) {
	rep, err := n.sync.CatchUp(ctx, sc, peers...)
	if err == nil && rep.Err == nil && len(peers) > 0 {
		n.mu.Lock()
		n.lastSync[sc] = SyncRecord{Peer: peers[0], At: time.Now(), Received: rep.Received, Sent: rep.Sent}
		n.mu.Unlock()
	}
	return rep, err
}

// ScopeStatus is the state of one kept scope.
type ScopeStatus struct {
	ScopeStats
	// LastSync is the last successful sync of the scope, zero if none.
	LastSync SyncRecord
}

// Status returns the state of every kept scope, sorted by scope.
func (n *Node) Status() []ScopeStatus {
	var out []ScopeStatus
	for _, sc := range n.store.Scopes() {
		st, ok := n.store.Stats(sc)
		if !ok {
			continue
		}
		n.mu.Lock()
		ls := n.lastSync[sc]
		n.mu.Unlock()
		out = append(out, ScopeStatus{ScopeStats: st, LastSync: ls})
	}
	return out
}
