package protocol

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol/internal/streams"
	"github.com/storesync/storesync/reconcile"
)

// ErrNoCatchUp: the local store cannot take catch-up streams (it is not
// a CatchUpStore).
var ErrNoCatchUp = errors.New("storesync: the store does not support catch-up")

// minSplit is the smallest count worth cutting into ranges: below it one
// peer streams the scope faster than several could agree to share it.
const minSplit = 4096

// rangesPerPeer is how many ranges a catch-up from several peers cuts a
// scope into, per peer: enough that a fast peer takes more of them than a
// slow one, and that a failed peer's remainder is a small part.
const rangesPerPeer = 4

// CatchUp streams into the store the messages of sc that the peers hold
// within the service's window, in key order, without reconciling: the
// way for an empty or far-behind store to catch up at the speed of
// storage. Every message is verified as a fetched one is.
//
// With several peers, the scope is cut into key ranges along the top
// boundaries of the fullest peer's tree, and the peers stream disjoint
// ranges in parallel; a peer that fails hands its range's remainder to
// the others. Each batch is stored together with its range's Cursor, so
// a CatchUp that stops (an error, a cancelled ctx, a killed process)
// resumes where it stopped when called again, and a batch received twice
// changes nothing. When every range is done, CatchUp runs a normal
// session with a peer that served it, so that what the peers received
// meanwhile arrives too; the report covers both.
func (s *Service) CatchUp(ctx context.Context, sc reconcile.Scope, peers ...peer.ID) (ScopeReport, error) {
	start := time.Now()
	rep, served, err := s.catchUp(ctx, sc, peers)
	if err == nil {
		var fin *Report
		fin, err = s.sync(ctx, served, []reconcile.Scope{sc}, false)
		if fin != nil && len(fin.Scopes) == 1 {
			f := fin.Scopes[0]
			rep.Need, rep.Have, rep.Sent, rep.RoundTrips = f.Need, f.Have, f.Sent, f.RoundTrips
			rep.Received += f.Received
			rep.Rejected += f.Rejected
			rep.Bytes += f.Bytes
			if err == nil {
				err = f.Err
			}
		}
	}
	rep.Duration = time.Since(start)
	return rep, err
}

// catchUp streams every remaining range of sc from the peers and returns
// the report and a peer that served it. It runs no final session.
func (s *Service) catchUp(ctx context.Context, sc reconcile.Scope, peers []peer.ID) (ScopeReport, peer.ID, error) {
	rep := ScopeReport{Scope: sc}
	cs, ok := s.store.(CatchUpStore)
	if !ok {
		return rep, "", ErrNoCatchUp
	}
	if _, ok := s.store.Set(sc); !ok {
		return rep, "", fmt.Errorf("%w: %v", ErrUnknownScope, sc)
	}
	peers = slices.DeleteFunc(slices.Clone(peers), s.strikes.isRefused)
	if len(peers) == 0 {
		return rep, "", fmt.Errorf("%w: no peer to catch up from", ErrRefused)
	}
	// One catch-up of a scope at a time: a second waits for the first
	// and then has nothing to stream (its caller reconciles).
	release, waited, err := s.catchUpSlot(ctx, sc)
	if err != nil || waited {
		return rep, peers[0], err
	}
	defer release()
	t := newTally(sc)
	curs, err := cs.Cursors(ctx, sc)
	if err != nil {
		return rep, "", err
	}
	if len(curs) == 0 {
		if curs, err = s.plan(ctx, sc, peers, t); err != nil {
			return rep, "", err
		}
		// A plan of several ranges is saved at once, so that a restart
		// finds every range; a single range is saved with its first
		// batch, so that a peer that serves nothing leaves nothing.
		if len(curs) > 1 {
			if _, err := cs.PutCatchUp(ctx, sc, nil, nil, curs...); err != nil {
				return rep, "", err
			}
		}
	}
	put, end, err := startLoad(ctx, cs, sc, curs)
	if err != nil {
		return rep, "", err
	}
	served, err := s.work(ctx, sc, peers, curs, t, put)
	if end != nil {
		// The load ends before the final session, which reads the tree.
		err = errors.Join(err, end(ctx))
	}
	t.mu.Lock()
	rep.Streamed, rep.Received, rep.Rejected, rep.Bytes = t.streamed, t.received, t.rejected, t.bytes
	t.mu.Unlock()
	return rep, served, err
}

// catchUpSlot takes the scope's catch-up slot, or waits for the catch-up
// that holds it to end and reports that it waited.
func (s *Service) catchUpSlot(ctx context.Context, sc reconcile.Scope) (release func(), waited bool, err error) {
	s.catchMu.Lock()
	ch, busy := s.catching[sc]
	if !busy {
		ch = make(chan struct{})
		s.catching[sc] = ch
	}
	s.catchMu.Unlock()
	if busy {
		select {
		case <-ch:
			return nil, true, nil
		case <-ctx.Done():
			return nil, true, ctx.Err()
		}
	}
	return func() {
		s.catchMu.Lock()
		delete(s.catching, sc)
		s.catchMu.Unlock()
		close(ch)
	}, false, nil
}

// plan cuts the service's window into the ranges of a new catch-up: one
// range for one peer; for several, ranges of about equal counts along the
// top boundaries of the fullest peer's tree, from the peers' summaries.
func (s *Service) plan(ctx context.Context, sc reconcile.Scope, peers []peer.ID, t *tally) ([]Cursor, error) {
	lo, hi := s.window()
	whole := []Cursor{{Lo: lo, Hi: hi, After: lo}}
	if len(peers) == 1 {
		return whole, nil
	}
	sums := make([]*pb.CatchUpHeader, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := s.summary(ctx, p, sc, lo, hi)
			if err != nil {
				s.log.Debug("catch-up summary failed", "peer", p, "scope", sc, "err", err)
				return
			}
			sums[i] = h
		}()
	}
	wg.Wait()
	var best *pb.CatchUpHeader
	for _, h := range sums {
		if h != nil && (best == nil || h.Count > best.Count) {
			best = h
		}
	}
	if best == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return whole, nil // the workers will report what fails
	}
	return cutRanges(lo, hi, best, rangesPerPeer*len(peers), t)
}

// cutRanges groups the parts of a summary into at most n ranges of about
// equal counts, and tells the tally what each is expected to hold.
func cutRanges(lo, hi reconcile.Key, h *pb.CatchUpHeader, n int, t *tally) ([]Cursor, error) {
	bounds := make([]reconcile.Key, 0, len(h.Splits)/reconcile.KeySize)
	for b := h.Splits; len(b) >= reconcile.KeySize; b = b[reconcile.KeySize:] {
		k, _ := reconcile.KeyFromBytes(b[:reconcile.KeySize])
		bounds = append(bounds, k)
	}
	if len(h.PartCounts) != len(bounds)+1 || len(h.Splits)%reconcile.KeySize != 0 || len(bounds) > maxSplits {
		return nil, errors.Join(ErrBadRequest, errors.New("malformed catch-up summary"))
	}
	prev := lo
	for _, b := range bounds {
		// A cut between timestamps (reconcile.TimeBound) is never a
		// message's key, which the ranges on both sides of it would
		// leave out.
		if !prev.Less(b) || !b.Less(hi) || b.Hash != (reconcile.Hash{}) {
			return nil, errors.Join(ErrBadRequest, errors.New("catch-up summary splits out of order or not between timestamps"))
		}
		prev = b
	}
	var sum uint64
	for _, c := range h.PartCounts {
		if sum += c; sum < c || sum > reconcile.MaxCount {
			return nil, errors.Join(ErrBadRequest, errors.New("catch-up summary counts overflow"))
		}
	}
	if sum != h.Count {
		return nil, errors.Join(ErrBadRequest, errors.New("catch-up summary parts do not add up to its count"))
	}
	if h.Count < minSplit {
		return []Cursor{{Lo: lo, Hi: hi, After: lo}}, nil
	}
	per := max(h.Count/uint64(n), 1)
	var out []Cursor
	start, acc := lo, uint64(0)
	for i, c := range h.PartCounts {
		acc += c
		if i == len(bounds) || acc >= per {
			end := hi
			if i < len(bounds) {
				end = bounds[i]
			}
			out = append(out, Cursor{Lo: start, Hi: end, After: start})
			t.expect(end, int(min(acc, 1<<40)))
			start, acc = end, 0
		}
	}
	return out, nil
}

// summary asks p for the header of a range without its messages.
func (s *Service) summary(ctx context.Context, p peer.ID, sc reconcile.Scope, lo, hi reconcile.Key) (*pb.CatchUpHeader, error) {
	st, err := s.openStream(ctx, p, CatchUpID)
	if err != nil {
		return nil, err
	}
	if err := streams.Setup(st, ServiceName, 64<<10); err != nil {
		return nil, err
	}
	defer st.Scope().ReleaseMemory(64 << 10)
	defer resetOnCancel(ctx, st)()
	c := newConn(st, 32<<10, s.cfg.ioTimeout, deadlineOf(ctx))
	id := sc.ID()
	req := &pb.CatchUpRequest{Scope: id[:], After: lo.Bytes(), Summary: true}
	if hi != reconcile.End {
		req.Until = hi.Bytes()
	}
	var h pb.CatchUpHeader
	if err := s.writeFlush(c, req); err != nil {
		_ = st.Reset()
		return nil, err
	}
	if err := c.read(&h); err != nil {
		_ = st.Reset()
		return nil, err
	}
	if err := remoteError(h.Error); err != nil {
		_ = st.Reset()
		return nil, err
	}
	return &h, closeAfterPeer(c)
}

// work streams the cursors' ranges from the peers, one worker per peer
// taking the next range left. A worker whose peer fails puts its range's
// remainder back and stops; the catch-up fails only when every peer has.
// It returns a peer that completed a range, for the final session.
func (s *Service) work(ctx context.Context, sc reconcile.Scope, peers []peer.ID, curs []Cursor, t *tally, put batchStore) (peer.ID, error) {
	q := &rangeQueue{todo: make([]*Cursor, 0, len(curs)), alive: len(peers)}
	q.cond = sync.NewCond(&q.mu)
	for i := range curs {
		if curs[i].remaining() {
			q.todo = append(q.todo, &curs[i])
		}
	}
	// A resumed range goes to the peer it came from first.
	slices.SortStableFunc(q.todo, func(a, b *Cursor) int { return a.Lo.Compare(b.Lo) })
	var wg sync.WaitGroup
	errs := make([]error, len(peers))
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				cur := q.take(p)
				if cur == nil {
					return
				}
				err := s.streamRange(ctx, p, sc, cur, t, put)
				if err != nil {
					errs[i] = err
					s.log.Debug("catch-up range failed", "peer", p, "scope", sc, "err", err)
				}
				if !q.finish(p, cur, err) {
					return
				}
			}
		}()
	}
	wg.Wait()
	if q.served != "" && len(q.todo) == 0 {
		return q.served, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if len(q.todo) == 0 {
		return peers[0], nil // nothing was left to stream
	}
	return "", fmt.Errorf("storesync: catch-up of %s stopped: %w", sc, errors.Join(errs...))
}

// rangeQueue hands out the ranges of a catch-up to the workers. A mutex
// and a condition variable: the state is small and the workers few.
type rangeQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	todo   []*Cursor
	busy   int     // ranges being streamed
	alive  int     // workers whose peer has not failed
	served peer.ID // the first peer that completed a range
}

// take returns the next range for p's worker, waiting while the queue is
// empty but others are busy and might hand a remainder back; nil when
// nothing is left.
func (q *rangeQueue) take(p peer.ID) *Cursor {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.todo) == 0 && q.busy > 0 {
		q.cond.Wait()
	}
	if len(q.todo) == 0 {
		return nil
	}
	// Prefer the range this peer served before a restart.
	i := slices.IndexFunc(q.todo, func(c *Cursor) bool { return c.Peer == p })
	if i < 0 {
		i = 0
	}
	c := q.todo[i]
	q.todo = slices.Delete(q.todo, i, i+1)
	q.busy++
	return c
}

// finish records the end of a range's stream and reports whether the
// worker goes on: a failed range goes back to the queue, its worker stops.
func (q *rangeQueue) finish(p peer.ID, c *Cursor, err error) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.cond.Broadcast()
	q.busy--
	if err == nil {
		if q.served == "" {
			q.served = p
		}
		return true
	}
	if c.remaining() {
		q.todo = append(q.todo, c)
	}
	q.alive--
	return false
}
