package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	logging "github.com/libp2p/go-libp2p/gologshim"

	"github.com/storesync/storesync/reconcile"
)

var log = logging.Logger("storesync/gossip")

// Service is the anti-entropy layer of a node: it announces the roots of
// the scopes of the groups it joined and pulls where they differ. One
// event-loop goroutine owns every piece of bookkeeping (groups, members,
// peers, sessions); topic readers, timers and sessions only send it work
// through a channel. Its methods are safe for concurrent use.
type Service struct {
	self   peer.ID
	net    Network
	store  Store
	syncer Syncer
	cfg    config
	log    *slog.Logger

	work   chan func()
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Owned by the loop.
	groups   map[string]*groupState
	peers    map[peer.ID]*peerState
	sessions int
	queue    []*job
	counts   Counters
}

// New starts the service of the local peer self.
func New(self peer.ID, net Network, store Store, syncer Syncer, opts ...Option) (*Service, error) {
	cfg := defaults()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.spread == 0 {
		cfg.spread = cfg.interval / 4
	}
	if cfg.backoffBase == 0 {
		cfg.backoffBase, cfg.backoffMax = cfg.interval/6, 20*cfg.interval
	}
	if cfg.rand == nil {
		cfg.rand = rand.Float64
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{self: self, net: net, store: store, syncer: syncer, cfg: cfg, log: cfg.logger,
		work: make(chan func()), ctx: ctx, cancel: cancel,
		groups: make(map[string]*groupState), peers: make(map[peer.ID]*peerState),
		counts: Counters{Sessions: make(map[string]int)}}
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

func (s *Service) loop() {
	defer s.wg.Done()
	for {
		select {
		case f := <-s.work:
			f()
		case <-s.ctx.Done():
			for _, g := range s.groups {
				g.stop()
			}
			return
		}
	}
}

// post hands f to the loop; it gives up when the service closes.
func (s *Service) post(f func()) bool {
	select {
	case s.work <- f:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// call runs f on the loop and waits for it.
func (s *Service) call(ctx context.Context, f func()) error {
	done := make(chan struct{})
	if !s.post(func() { f(); close(done) }) {
		return errClosed
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// after runs f on the loop after d.
func (s *Service) after(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() { s.post(f) })
}

var errClosed = errors.New("gossip: service closed")

// Close leaves every group and stops the service, waiting for its
// sessions.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Join joins a group: it subscribes to the group's topic, announces every
// interval, pulls where announced roots differ, and syncs with a few
// members once they appear. Joining a group already joined fails.
func (s *Service) Join(ctx context.Context, g Group) error {
	if err := g.validate(); err != nil {
		return err
	}
	for _, sc := range g.Scopes {
		if _, ok := s.store.State(sc); !ok {
			return fmt.Errorf("gossip: group %s: scope %v not kept", g.Name, sc)
		}
	}
	var err error
	if cerr := s.call(ctx, func() { err = s.join(g) }); cerr != nil {
		return cerr
	}
	return err
}

// Leave leaves a group.
func (s *Service) Leave(ctx context.Context, name string) error {
	var err error
	if cerr := s.call(ctx, func() {
		var g *groupState
		if g, err = s.group(name); err == nil {
			g.stop()
			delete(s.groups, name)
		}
	}); cerr != nil {
		return cerr
	}
	return err
}

// group returns a joined group; it runs on the loop.
func (s *Service) group(name string) (*groupState, error) {
	g, ok := s.groups[name]
	if !ok {
		return nil, fmt.Errorf("gossip: not in group %q", name)
	}
	return g, nil
}

// join runs on the loop.
func (s *Service) join(g Group) error {
	if _, ok := s.groups[g.Name]; ok {
		return fmt.Errorf("gossip: already in group %q", g.Name)
	}
	d := define(g)
	v := newValidator(&d, s.cfg.maxAnnouncement, s.cfg.interval, s.self, s.cfg.now)
	t, err := s.net.Join(g.Topic(), v.validate)
	if err != nil {
		return fmt.Errorf("gossip: join %s: %w", g.Topic(), err)
	}
	gs := newGroupState(d, t, s.cfg.now())
	rctx, stop := context.WithCancel(s.ctx)
	gs.stopReader = stop
	s.groups[g.Name] = gs
	s.wg.Add(2)
	go s.read(rctx, gs)
	go s.watchJoins(rctx, gs)
	// Announce soon after joining, so that members learn of us, then
	// every interval.
	first := s.jittered(s.cfg.interval / 10)
	gs.nextAnnounce = s.cfg.now().Add(first)
	gs.announceTimer = s.after(first, func() { s.announce(gs) })
	if s.cfg.startupPeers > 0 {
		gs.startupTimer = s.after(s.cfg.startupDelay, func() { s.startup(gs, 0) })
	}
	s.log.Info("joined sync group", "group", g.Name, "scopes", len(g.Scopes), "private", g.Private())
	return nil
}

// read delivers the group's announcements to the loop.
func (s *Service) read(ctx context.Context, g *groupState) {
	defer s.wg.Done()
	for {
		from, data, err := g.topic.Next(ctx)
		if err != nil {
			return
		}
		if from == s.self {
			continue
		}
		s.post(func() { s.onAnnouncement(g, from, data) })
	}
}

// watchJoins announces early when a peer joins the group's topic: a new
// member, or a partition healing, learns our roots at once rather than at
// our next interval.
func (s *Service) watchJoins(ctx context.Context, g *groupState) {
	defer s.wg.Done()
	for {
		p, err := g.topic.NextJoin(ctx)
		if err != nil {
			return
		}
		if g.allows(p) {
			s.post(func() { s.announceSoon(g) })
		}
	}
}

// jittered returns d moved by up to ±jitter of itself.
func (s *Service) jittered(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 + s.cfg.jitter*(2*s.cfg.rand()-1)))
}

// statesOf returns the local states of scopes.
func (s *Service) statesOf(scopes []reconcile.Scope) map[reconcile.Scope]ScopeState {
	out := make(map[reconcile.Scope]ScopeState, len(scopes))
	for _, sc := range scopes {
		if st, ok := s.store.State(sc); ok {
			out[sc] = st
		}
	}
	return out
}
