package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol/internal/streams"
	"github.com/storesync/storesync/reconcile"
)

// clientScope is the client's side of one scope of a session.
type clientScope struct {
	report  ScopeReport
	sess    *reconcile.Session
	open    bool // reconciling
	pending []*pb.ReconcileFrame
	start   time.Time
	// mine is our count in the session's range; theirs the server's, as
	// its first reply tells it, or -1.
	mine   uint64
	theirs int64
	// mayStream: the scope may leave the session to be streamed (the
	// store and the options allow it); handover: it did, far behind.
	mayStream, handover bool
}

// maxSyncRounds bounds the sessions one Sync runs: a scope streamed
// because it was far behind, and a session cut short by a limit (a
// difference larger than one session learns), take another. A Sync that
// stops here has made progress; the next one goes on.
const maxSyncRounds = 8

// Sync brings the given scopes in step with peer p and returns what
// happened per scope. Per scope it chooses how: a scope empty here, or
// with a catch-up that stopped, is streamed first (CatchUp, from p
// alone); the others are reconciled in one session, which fetches the
// messages we lack, verified, and lets p pull the ones it lacks; a scope
// the session finds far behind (WithCatchUp) leaves it, is streamed, and
// is reconciled again, so that its roots are proven equal at the end. No
// scope size fails a session: a difference larger than the limits let
// one session learn is transferred as far as it was learned, and further
// sessions (up to 8 in one call) learn the rest.
//
// A scope the peer does not keep fails alone (ErrUnsupportedScope in its
// report); a peer that does not speak the protocol fails at negotiation
// with ErrProtocolNotSupported and nothing else happens. Sessions are
// bound to the service's window (WithWindow) and timeout.
func (s *Service) Sync(ctx context.Context, p peer.ID, scopes ...reconcile.Scope) (*Report, error) {
	return s.sync(ctx, p, scopes, true)
}

// sync is Sync; with catchUp false it only reconciles (the final session
// of a CatchUp).
func (s *Service) sync(ctx context.Context, p peer.ID, scopes []reconcile.Scope, catchUp bool) (*Report, error) {
	start := time.Now()
	rep := &Report{Peer: p}
	if len(scopes) == 0 {
		return rep, errors.New("storesync: no scopes to sync")
	}
	if len(scopes) > s.cfg.maxScopes {
		return rep, fmt.Errorf("storesync: %d scopes in one session, at most %d", len(scopes), s.cfg.maxScopes)
	}
	if s.strikes.isRefused(p) {
		return rep, fmt.Errorf("%w: peer %s sent too many bad messages", ErrRefused, p)
	}
	_, canStream := s.store.(CatchUpStore)
	catchUp = catchUp && canStream && s.cfg.catchUpRatio > 0
	reports := make([]ScopeReport, len(scopes))
	var todo []int
	for i, sc := range scopes {
		reports[i] = ScopeReport{Scope: sc}
		if _, ok := s.store.Set(sc); !ok {
			return rep, fmt.Errorf("%w: %v", ErrUnknownScope, sc)
		}
		if catchUp && s.NeedsCatchUp(ctx, sc) {
			s.streamScope(ctx, p, &reports[i])
			if reports[i].Err != nil {
				continue
			}
		}
		todo = append(todo, i)
	}
	var err error
	// Groups of scopes still to reconcile, one session each. A session
	// refused as too large (a turn past the memory one side's resource
	// manager lets a stream hold: many scopes that each differ by more
	// than a frame) is split in two groups, down to one scope a session.
	groups := [][]int{todo}
	rounds := maxSyncRounds + 2*len(todo)
	for round := 0; len(groups) > 0 && round < rounds && err == nil; round++ {
		todo, groups = groups[0], groups[1:]
		var cs []*clientScope
		cs, err = s.session(ctx, p, scopes, todo, catchUp)
		split := errors.Is(err, ErrTooLarge) && len(todo) > 1 && ctx.Err() == nil
		var next []int
		for j, c := range cs {
			r := &reports[todo[j]]
			r.add(c.report)
			switch {
			case err != nil || c.report.Err != nil:
			case c.handover:
				s.streamScope(ctx, p, r)
				if r.Err == nil {
					next = append(next, todo[j])
				}
			case !c.sess.Complete():
				// Cut short by a limit: what it learned was
				// transferred; the next session finds the rest.
				next = append(next, todo[j])
			}
		}
		if split {
			s.log.Debug("session too large, splitting its scopes", "peer", p, "scopes", len(todo), "err", err)
			err, next = nil, nil
			groups = append(groups, todo[:len(todo)/2], todo[len(todo)/2:])
		}
		if len(next) > 0 {
			groups = append(groups, next)
		}
	}
	rep.Scopes = reports
	rep.Duration = time.Since(start)
	return rep, err
}

// NeedsCatchUp reports whether Sync streams a scope before reconciling
// it: the store holds nothing of it in the window, or a catch-up of it
// stopped midway. A node that starts with several peers streams such
// scopes from all of them at once (CatchUp).
func (s *Service) NeedsCatchUp(ctx context.Context, sc reconcile.Scope) bool {
	set, ok := s.store.Set(sc)
	cs, streams := s.store.(CatchUpStore)
	if !ok || !streams || s.cfg.catchUpRatio == 0 {
		return false
	}
	lo, hi := s.window()
	agg, err := set.Aggregate(ctx, lo, hi)
	if err == nil && agg.Count == 0 {
		return true
	}
	curs, err := cs.Cursors(ctx, sc)
	return err == nil && len(curs) > 0
}

// streamScope catches a scope up from p alone and adds the outcome to r.
// A peer that does not serve catch-up is not an error: the scope is
// reconciled instead.
func (s *Service) streamScope(ctx context.Context, p peer.ID, r *ScopeReport) {
	start := time.Now()
	cr, _, err := s.catchUp(ctx, r.Scope, []peer.ID{p})
	cr.Duration = time.Since(start)
	if !errors.Is(err, ErrProtocolNotSupported) {
		cr.Err = err
	}
	r.add(cr)
}

// session runs one reconciliation session with p over the scopes at the
// given indices and returns the state of each. A session error fails
// them all; the caller stops.
func (s *Service) session(ctx context.Context, p peer.ID, scopes []reconcile.Scope, idx []int, mayStream bool) ([]*clientScope, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.sessionTimeout)
	defer cancel()
	sel := make([]reconcile.Scope, len(idx))
	for j, i := range idx {
		sel[j] = scopes[i]
	}
	cs, err := s.openScopes(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		c.mayStream = mayStream
	}
	if m := s.cfg.metrics; m != nil {
		m.SessionStarted("client")
	}
	err = s.runSession(ctx, p, cs)
	if m := s.cfg.metrics; m != nil {
		m.SessionFinished("client", outcome(err), time.Since(start))
	}
	for _, c := range cs {
		c.report.Duration = time.Since(c.start)
		if c.sess != nil {
			c.report.RoundTrips = (c.sess.Messages() + 1) / 2
		}
		if m := s.cfg.metrics; m != nil && c.report.Err == nil {
			m.RoundTrips(c.report.Scope.String(), c.report.RoundTrips)
			m.Bytes(c.report.Scope.String(), "total", c.report.Bytes)
		}
	}
	return cs, err
}

// openScopes starts a reconciliation session per scope over the window.
func (s *Service) openScopes(ctx context.Context, scopes []reconcile.Scope) ([]*clientScope, error) {
	lo, hi := s.window()
	var out []*clientScope
	for _, sc := range scopes {
		c := &clientScope{report: ScopeReport{Scope: sc}, start: time.Now(), theirs: -1}
		out = append(out, c)
		set, ok := s.store.Set(sc)
		if !ok {
			return nil, fmt.Errorf("%w: %v", ErrUnknownScope, sc)
		}
		mine, err := set.Aggregate(ctx, lo, hi)
		if err != nil {
			return nil, err
		}
		sess, err := reconcile.NewSession(set, lo, hi, s.cfg.params)
		if err != nil {
			return nil, err
		}
		c.sess, c.open, c.mine = sess, true, mine.Count
	}
	return out, nil
}

// window returns the key range of a session started now.
func (s *Service) window() (lo, hi reconcile.Key) {
	now := s.cfg.now()
	lo, hi = reconcile.Key{}, reconcile.End
	if s.cfg.window > 0 {
		lo = reconcile.TimeBound(uint64(max(now.Add(-s.cfg.window).UnixNano(), 0)))
	}
	if s.cfg.settle > 0 {
		hi = reconcile.TimeBound(uint64(max(now.Add(-s.cfg.settle).UnixNano(), 0)) + 1)
	}
	return lo, hi
}

// openStream opens a stream to p for the first of ids that p supports,
// turning a failed protocol negotiation into ErrProtocolNotSupported.
func (s *Service) openStream(ctx context.Context, p peer.ID, ids ...protocol.ID) (network.Stream, error) {
	st, err := s.h.NewStream(ctx, p, ids...)
	if err != nil {
		var ns msmux.ErrNotSupported[protocol.ID]
		if errors.As(err, &ns) {
			return nil, fmt.Errorf("%w: %s", ErrProtocolNotSupported, ids[0])
		}
		return nil, err
	}
	return st, nil
}

// runSession runs the reconciliation turns, then the transfers both ways.
func (s *Service) runSession(ctx context.Context, p peer.ID, cs []*clientScope) error {
	st, err := s.openStream(ctx, p, SyncID, SyncID30)
	if err != nil {
		return err
	}
	if st.Protocol() == SyncID30 {
		for _, sc := range cs {
			sc.sess.WithoutMatch()
		}
	}
	mem := 2*s.cfg.params.FrameSize + 64<<10
	if err := streams.Setup(st, ServiceName, mem); err != nil {
		return err
	}
	defer st.Scope().ReleaseMemory(mem)
	defer resetOnCancel(ctx, st)()
	deadline, _ := ctx.Deadline()
	c := newConn(st, s.cfg.params.FrameSize+1024, s.cfg.ioTimeout, deadline)
	if err := s.reconcileTurns(ctx, c, cs); err != nil {
		_ = st.Reset()
		return err
	}
	return s.transfer(ctx, p, c, cs)
}

// reconcileTurns sends the request and plays turns until no scope needs
// a reply; the last turn says finish.
func (s *Service) reconcileTurns(ctx context.Context, c *conn, cs []*clientScope) error {
	req := &pb.SyncRequest{}
	for _, sc := range cs {
		first, err := sc.sess.Start(ctx)
		if err != nil {
			return err
		}
		id := sc.report.Scope.ID()
		req.Scopes = append(req.Scopes, &pb.ScopeOpen{Scope: id[:], First: first[0]})
		sc.report.Bytes += int64((&pb.ScopeOpen{Scope: id[:], First: first[0]}).Size() + 2)
	}
	if err := c.write(req); err != nil {
		return err
	}
	if err := c.flush(); err != nil {
		return err
	}
	mem := newTurnMemory(c.s)
	defer mem.release()
	for first := true; ; first = false {
		if err := s.readReply(c, cs, mem); err != nil {
			return err
		}
		asks := false
		for i, sc := range cs {
			if first && sc.open && sc.mayStream && sc.theirs >= 0 && s.cfg.farBehind(sc.mine, uint64(sc.theirs)) {
				// Far behind: streaming the scope beats reconciling it.
				// Saying nothing more of it ends it for the server.
				sc.open, sc.handover, sc.pending = false, true, nil
			}
			if !sc.open {
				continue
			}
			if sc.pending == nil || sc.pending[len(sc.pending)-1].More {
				return errors.Join(ErrBadRequest, fmt.Errorf("peer left scope %d unanswered", i))
			}
			next, done, err := sc.sess.Next(ctx, sc.pending)
			sc.pending = nil
			if err != nil {
				return classify(err)
			}
			sc.open = !done
			asks = asks || !done
			for _, f := range next {
				if err := s.writeFrame(c, sc, i, f); err != nil {
					return err
				}
			}
		}
		if err := c.write(&pb.SyncFrame{EndOfTurn: true, Finish: !asks}); err != nil {
			return err
		}
		if err := c.flush(); err != nil {
			return err
		}
		if !asks {
			return nil
		}
	}
}

func (s *Service) writeFrame(c *conn, sc *clientScope, i int, f *pb.ReconcileFrame) error {
	sf := &pb.SyncFrame{Scope: uint32(i), Frame: f}
	sc.report.Bytes += int64(sf.Size() + 3)
	return c.write(sf)
}

// readReply reads the server's turn into the scopes' pending frames. A
// scope error ends that scope; a session error ends the session.
func (s *Service) readReply(c *conn, cs []*clientScope, mem *turnMemory) error {
	size := s.newMessageBytes(mem)
	for n := 0; n <= maxTurnFrames; n++ {
		var f pb.SyncFrame
		if err := c.read(&f); err != nil {
			return err
		}
		if f.EndOfTurn {
			return remoteError(f.Error)
		}
		i := int(f.Scope)
		if i >= len(cs) || !cs[i].open {
			return errors.Join(ErrBadRequest, errors.New("frame for no open scope"))
		}
		sc := cs[i]
		sc.report.Bytes += int64(f.Size() + 3)
		if f.Error != nil {
			sc.report.Err = remoteError(f.Error)
			sc.open, sc.pending = false, nil
			continue
		}
		if f.Frame == nil || (len(sc.pending) > 0 && !sc.pending[len(sc.pending)-1].More) {
			return errors.Join(ErrBadRequest, errors.New("malformed frame"))
		}
		if f.Count > 0 && f.Count-1 <= reconcile.MaxCount {
			sc.theirs = int64(f.Count - 1)
		}
		if err := size.add(i, f.Frame); err != nil {
			return err
		}
		sc.pending = append(sc.pending, f.Frame)
	}
	return errors.Join(ErrTooLarge, errors.New("too many frames in a turn"))
}

// transfer fetches what we lack and, if we offered anything, waits for
// the server's report of what it pulled from us.
func (s *Service) transfer(ctx context.Context, p peer.ID, c *conn, cs []*clientScope) error {
	var jobs []*fetchJob
	offered := false
	for i, sc := range cs {
		if sc.report.Err != nil || sc.handover {
			continue
		}
		d := sc.sess.Result()
		sc.report.Need, sc.report.Have = len(d.Need), len(d.Have)
		offered = offered || len(d.Have) > 0
		if len(d.Need) > 0 {
			// The job's bytes start from the reconciliation's, so that
			// progress reports the scope's bytes so far.
			jobs = append(jobs, &fetchJob{index: i, scope: sc.report.Scope, keys: d.Need,
				report: ScopeReport{Bytes: sc.report.Bytes}})
		}
	}
	var wg sync.WaitGroup
	var fetchErr error
	if len(jobs) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fetchErr = s.fetch(ctx, p, jobs)
		}()
	}
	var reportErr error
	if offered {
		reportErr = s.readPulled(c, cs)
	}
	wg.Wait()
	for _, j := range jobs {
		r := &cs[j.index].report
		r.Received, r.Rejected = j.report.Received, j.report.Rejected
		r.Bytes = j.report.Bytes
	}
	if err := errors.Join(fetchErr, reportErr); err != nil {
		_ = c.s.Reset()
		return err
	}
	return closeAfterPeer(c)
}

// closeAfterPeer waits for the server to close its side, which it does
// after giving back its session slot, then closes ours: a client's next
// session never finds this one still counted against it.
func closeAfterPeer(c *conn) error {
	_ = c.s.CloseWrite()
	_ = c.s.SetReadDeadline(c.until())
	_, err := io.Copy(io.Discard, io.LimitReader(c.s, 1<<10))
	if err != nil {
		_ = c.s.Reset()
		return nil // the session's work is done; only its end was untidy
	}
	return c.s.Close()
}

// readPulled reads the server's report of what it pulled from us.
func (s *Service) readPulled(c *conn, cs []*clientScope) error {
	var f pb.SyncFrame
	if err := c.read(&f); err != nil {
		return err
	}
	if err := remoteError(f.Error); err != nil {
		return err
	}
	if !f.EndOfTurn || len(f.Pulled) != len(cs) {
		return errors.Join(ErrBadRequest, errors.New("malformed pull report"))
	}
	for i, n := range f.Pulled {
		cs[i].report.Sent = int(min(n, uint32(cs[i].report.Have)))
	}
	return nil
}
