package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol/internal/streams"
	"github.com/storesync/storesync/reconcile"
)

// serverScope is the server's side of one scope of a session.
type serverScope struct {
	index int
	scope reconcile.Scope
	set   reconcile.Set
	first *pb.ReconcileFrame // the client's opening
	resp  *reconcile.Responder
	err   error
	need  map[reconcile.Key]struct{} // learned: we lack, the client has
}

// handleSync runs the server side of a session: resource scope, limits,
// logging and metrics, and the stream's fate; serveSync holds the logic.
func (s *Service) handleSync(st network.Stream) {
	end, ok := s.begin(st, s.sessions, 2*s.cfg.params.FrameSize+64<<10, "sync", syncRefusal)
	if !ok {
		return
	}
	defer end()
	p := st.Conn().RemotePeer()
	start := time.Now()
	deadline := start.Add(s.cfg.sessionTimeout)
	c := newConn(st, s.cfg.params.FrameSize+1024, s.cfg.ioTimeout, deadline)
	// The slot goes back before the stream closes: a client waits for
	// the close, so its next session never finds this one still counted.
	var once sync.Once
	release := func() { once.Do(func() { s.sessions.release(p) }) }
	defer release()
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	defer resetOnCancel(ctx, st)()
	if m := s.cfg.metrics; m != nil {
		m.SessionStarted("server")
	}

	scopes, finished, err := s.serveSync(ctx, p, c, st.Protocol() != SyncID30)
	if err == nil && finished {
		err = s.pullAndReport(ctx, p, c, scopes)
	}
	if m := s.cfg.metrics; m != nil {
		m.SessionFinished("server", outcome(err), time.Since(start))
	}
	release()
	if err != nil {
		s.logFailure("sync session", p, err)
		s.refuse(c, err)
		return
	}
	_ = st.Close()
}

// refusalDelay is how long a stream refused admission (over a rate or a
// limit, or from a refused peer) waits before it is told so. A refusal
// is cheap, but a peer that asks again the moment it is refused makes
// the server pay stream setup and refusal thousands of times a second;
// waiting costs the server a parked stream without a memory
// reservation, and slows such a loop to two tries a second.
const refusalDelay = 500 * time.Millisecond

// begin begins an inbound stream whose kind l limits: it registers the
// handler with the service (so Close waits for it), attaches the stream
// to the service's resource scope and admits the peer, taking a slot of
// l. A peer not admitted is answered with refusal(err) after
// refusalDelay, and begin returns false. Only an admitted stream
// reserves mem for what it buffers. The caller releases the slot; end
// releases the memory and the registration.
func (s *Service) begin(st network.Stream, l *limiter, mem int, what string, refusal func(error) proto.Message) (end func(), ok bool) {
	if !s.handlers.Enter() {
		_ = st.Reset()
		return nil, false
	}
	done := s.handlers.Done
	p := st.Conn().RemotePeer()
	if err := streams.Attach(st, ServiceName); err != nil {
		s.log.Debug(what+" stream setup failed", "peer", p, "err", err)
		done()
		return nil, false
	}
	if err := s.admit(p, l); err != nil {
		s.tarpit()
		refuseWith(newConn(st, 1024, s.cfg.ioTimeout, time.Now().Add(s.cfg.ioTimeout)), err, refusal(err))
		done()
		return nil, false
	}
	if err := streams.Reserve(st, mem); err != nil {
		s.log.Debug(what+" stream memory refused", "peer", p, "err", err)
		l.release(p)
		done()
		return nil, false
	}
	return func() {
		st.Scope().ReleaseMemory(mem)
		done()
	}, true
}

// serveStream runs a catch-up or fetch handler: it admits the stream
// through l with mem bytes reserved (begin), reads frames of at most
// readLimit bytes, gives serve the session's time, and closes the stream
// when serve returns nil; when serve fails it logs the failure and
// answers it with refusal's message (what names the stream in logs).
func (s *Service) serveStream(st network.Stream, l *limiter, mem, readLimit int, what string,
	refusal func(error) proto.Message, serve func(context.Context, peer.ID, *conn) error) {
	end, ok := s.begin(st, l, mem, what, refusal)
	if !ok {
		return
	}
	defer end()
	p := st.Conn().RemotePeer()
	defer l.release(p)
	deadline := time.Now().Add(s.cfg.sessionTimeout)
	c := newConn(st, readLimit, s.cfg.ioTimeout, deadline)
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	defer resetOnCancel(ctx, st)()
	if err := serve(ctx, p, c); err != nil {
		s.logFailure(what, p, err)
		refuseWith(c, err, refusal(err))
		return
	}
	_ = st.Close()
}

// tarpit waits refusalDelay, or until the service closes.
func (s *Service) tarpit() {
	t := time.NewTimer(refusalDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// admit takes a session slot for p unless p is refused.
func (s *Service) admit(p peer.ID, l *limiter) error {
	if s.strikes.isRefused(p) {
		return ErrRefused
	}
	return l.acquire(p)
}

// serveSync answers the client's turns until it finishes or closes. It
// returns the scopes with what the server learned, and whether the client
// finished (and may wait for the report of what we pulled). Without
// match (sync 3.0), a MATCH item breaks the protocol.
func (s *Service) serveSync(ctx context.Context, p peer.ID, c *conn, match bool) ([]*serverScope, bool, error) {
	var req pb.SyncRequest
	if err := c.read(&req); err != nil {
		if errors.Is(err, io.EOF) {
			err = ErrBadRequest
		}
		return nil, false, err
	}
	if len(req.Scopes) == 0 || len(req.Scopes) > s.cfg.maxScopes {
		return nil, false, errors.Join(ErrBadRequest, errors.New("no scopes, or too many"))
	}
	scopes := make([]*serverScope, len(req.Scopes))
	turn := make(map[int][]*pb.ReconcileFrame, len(req.Scopes))
	for i, so := range req.Scopes {
		sc := &serverScope{index: i, need: make(map[reconcile.Key]struct{})}
		scopes[i] = sc
		if len(so.Scope) != 8 || so.First == nil || so.First.More {
			return nil, false, errors.Join(ErrBadRequest, errors.New("malformed scope opening"))
		}
		scope, ok := s.store.ScopeByID([8]byte(so.Scope))
		if !ok {
			sc.err = ErrUnsupportedScope
			continue
		}
		if !s.cfg.allowed(p, scope) {
			sc.err = ErrRefused
			continue
		}
		set, ok := s.store.Set(scope)
		if !ok {
			sc.err = ErrUnsupportedScope
			continue
		}
		resp, err := reconcile.NewResponder(set, s.cfg.params)
		if err != nil {
			return nil, false, err
		}
		if !match {
			resp.WithoutMatch()
		}
		sc.scope, sc.set, sc.first, sc.resp = scope, set, so.First, resp
		turn[i] = []*pb.ReconcileFrame{so.First}
	}
	turns := 0
	mem := newTurnMemory(c.s)
	defer mem.release()
	for first := true; ; first = false {
		wrote := false
		for _, i := range sortedKeys(turn) {
			sc := scopes[i]
			reply, learned, more, err := sc.resp.Respond(ctx, turn[i])
			if err != nil {
				return nil, false, classify(err)
			}
			for _, k := range learned.Need {
				sc.need[k] = struct{}{}
			}
			if !more {
				continue
			}
			var count uint64
			if first {
				if count, err = openingCount(ctx, sc); err != nil {
					return nil, false, classify(err)
				}
			}
			for fi, f := range reply {
				sf := &pb.SyncFrame{Scope: uint32(i), Frame: f}
				if first && fi == 0 {
					sf.Count = 1 + count
				}
				if err := c.write(sf); err != nil {
					return nil, false, err
				}
			}
			wrote = true
		}
		if first {
			for _, sc := range scopes {
				if sc.err != nil {
					if err := c.write(&pb.SyncFrame{Scope: uint32(sc.index), Error: wireError(sc.err)}); err != nil {
						return nil, false, err
					}
					wrote = true
				}
			}
		}
		if wrote {
			if err := c.write(&pb.SyncFrame{EndOfTurn: true}); err != nil {
				return nil, false, err
			}
			if err := c.flush(); err != nil {
				return nil, false, err
			}
		}
		next, finish, err := s.readTurn(c, scopes, mem)
		switch {
		case errors.Is(err, io.EOF) && len(next) == 0:
			return scopes, false, nil
		case err != nil:
			return nil, false, err
		}
		if turns++; turns > maxServerTurns(&s.cfg.params) {
			return nil, false, errors.Join(ErrTooLarge, errors.New("too many turns in one session"))
		}
		turn = next
		if finish {
			// The last messages need no reply but carry what we learn.
			for _, i := range sortedKeys(turn) {
				_, learned, _, err := scopes[i].resp.Respond(ctx, turn[i])
				if err != nil {
					return nil, false, classify(err)
				}
				for _, k := range learned.Need {
					scopes[i].need[k] = struct{}{}
				}
			}
			return scopes, true, nil
		}
	}
}

// openingCount returns how many messages we hold in the range a client's
// session covers, which our first reply tells it: a client far behind
// streams the scope instead of reconciling it.
func openingCount(ctx context.Context, sc *serverScope) (uint64, error) {
	lo, hi, err := reconcile.OpeningRange(sc.first)
	if err != nil {
		return 0, err
	}
	agg, err := sc.set.Aggregate(ctx, lo, hi)
	return agg.Count, err
}

// maxServerTurns bounds the turns a client may play in one session after
// its request: as many as the messages a session of ours may have in
// both directions, twice what a client with our parameters needs. Each
// turn may make the server read its ranges again; a client that keeps
// asking ends its session and starts another, which the session limits
// and rates count.
func maxServerTurns(p *reconcile.Params) int { return max(p.MaxMessages, 4) }

// maxTurnFrames bounds the frames of one turn, over all its scopes.
const maxTurnFrames = 1 << 16

// messageBytes counts the bytes of each scope's message in a turn as its
// frames arrive, and refuses a message past what one within our limits
// can take (reconcile.Limits.MaxMessageBytes), and a frame whose memory
// the stream cannot reserve (turnMemory): the memory a turn holds is
// bounded by the limits, scope by scope, and by the resource manager,
// before the message is decoded.
type messageBytes struct {
	limit int64
	by    map[int]int64
	mem   *turnMemory
}

// newMessageBytes starts counting a turn whose memory mem reserves; what
// mem held for the turn before, which has been handled, is given back.
func (s *Service) newMessageBytes(mem *turnMemory) messageBytes {
	mem.release()
	return messageBytes{limit: s.cfg.params.Limits.MaxMessageBytes(maxTurnFrames), by: make(map[int]int64), mem: mem}
}

// add counts frame f of scope i's message.
func (m messageBytes) add(i int, f *pb.ReconcileFrame) error {
	n := f.Size()
	m.by[i] += int64(n)
	if m.by[i] > m.limit {
		return errors.Join(ErrTooLarge, fmt.Errorf("a message of more than %d bytes", m.limit))
	}
	return m.mem.hold(n)
}

// readTurn reads one turn of the client: whole messages for some scopes,
// then the end of the turn, which may say the client finished.
func (s *Service) readTurn(c *conn, scopes []*serverScope, mem *turnMemory) (map[int][]*pb.ReconcileFrame, bool, error) {
	turn := make(map[int][]*pb.ReconcileFrame)
	complete := make(map[int]bool)
	size := s.newMessageBytes(mem)
	for n := 0; ; n++ {
		if n > maxTurnFrames {
			return nil, false, errors.Join(ErrTooLarge, errors.New("too many frames in a turn"))
		}
		var f pb.SyncFrame
		if err := c.read(&f); err != nil {
			return turn, false, err
		}
		if f.EndOfTurn {
			if f.Frame != nil || f.Error != nil || len(f.Pulled) > 0 {
				return nil, false, errors.Join(ErrBadRequest, errors.New("end of turn with content"))
			}
			for i := range turn {
				if !complete[i] {
					return nil, false, errors.Join(ErrBadRequest, errors.New("turn ended inside a message"))
				}
			}
			return turn, f.Finish, nil
		}
		i := int(f.Scope)
		if f.Frame == nil || f.Error != nil || f.Finish || i >= len(scopes) || scopes[i].resp == nil || complete[i] {
			return nil, false, errors.Join(ErrBadRequest, errors.New("frame for no open scope"))
		}
		if err := size.add(i, f.Frame); err != nil {
			return nil, false, err
		}
		turn[i] = append(turn[i], f.Frame)
		complete[i] = !f.Frame.More
	}
}

// pullAndReport fetches from the client what it turned out to hold and we
// lack, if the service pulls offered messages, and tells the client how
// many it pulled per scope. A client with nothing to offer does not wait
// for the report, so it gets none.
func (s *Service) pullAndReport(ctx context.Context, p peer.ID, c *conn, scopes []*serverScope) error {
	var jobs []*fetchJob
	pulled := make([]uint32, len(scopes))
	for _, sc := range scopes {
		if len(sc.need) > 0 {
			jobs = append(jobs, &fetchJob{index: sc.index, scope: sc.scope, keys: sortedSet(sc.need)})
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	if s.cfg.pullOffered {
		select {
		case s.pulls <- struct{}{}:
			err := s.fetch(ctx, p, jobs)
			<-s.pulls
			if err != nil {
				s.log.Debug("pulling offered messages failed", "peer", p, "err", err)
			}
			for _, j := range jobs {
				pulled[j.index] = uint32(j.report.Received)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := c.write(&pb.SyncFrame{EndOfTurn: true, Pulled: pulled}); err != nil {
		return err
	}
	return c.flush()
}

// refuse ends a sync session with an error; see refuseWith.
func (s *Service) refuse(c *conn, err error) { refuseWith(c, err, syncRefusal(err)) }

// syncRefusal is the frame that ends a session with err.
func syncRefusal(err error) proto.Message {
	return &pb.SyncFrame{EndOfTurn: true, Error: wireError(err)}
}

// refuseWith tells the peer why its stream ends (msg carries the coded
// error), gives it a moment to read that, and resets the stream.
func refuseWith(c *conn, err error, msg proto.Message) {
	if !errors.Is(err, network.ErrReset) && !errors.Is(err, context.Canceled) {
		if c.write(msg) == nil && c.flush() == nil {
			_ = c.s.CloseWrite()
			_ = c.s.SetReadDeadline(time.Now().Add(time.Second))
			_, _ = io.Copy(io.Discard, io.LimitReader(c.s, 1<<20))
		}
	}
	_ = c.s.Reset()
}

// classify maps reconciliation errors to wire errors.
func classify(err error) error {
	switch {
	case errors.Is(err, reconcile.ErrTooLarge):
		return errors.Join(ErrTooLarge, err)
	case errors.Is(err, reconcile.ErrBadFrame), errors.Is(err, reconcile.ErrUnexpected),
		errors.Is(err, reconcile.ErrTooManyMessages):
		return errors.Join(ErrBadRequest, err)
	}
	return err
}

// outcome names an error for metrics.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrTooLarge):
		return "bad_peer"
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrTooManySessions), errors.Is(err, ErrBusy), errors.Is(err, ErrRefused):
		return "refused"
	}
	return "error"
}

// logFailure logs a failed session: at warn level when the peer broke the
// protocol, at debug level otherwise.
func (s *Service) logFailure(what string, p peer.ID, err error) {
	if errors.Is(err, ErrBadRequest) || errors.Is(err, ErrTooLarge) {
		s.log.Warn(what+" failed: peer misbehaved", "peer", p, "err", err)
		return
	}
	s.log.Debug(what+" failed", "peer", p, "err", err)
}

func sortedKeys[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// sortedSet returns the keys of a set in key order.
func sortedSet(m map[reconcile.Key]struct{}) []reconcile.Key {
	out := make([]reconcile.Key, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b reconcile.Key) int { return a.Compare(b) })
	return out
}
