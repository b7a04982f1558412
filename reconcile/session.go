package reconcile

import (
	"context"
	"fmt"
	"slices"

	"github.com/storesync/storesync/pb"
)

// Session is the initiating side of a reconciliation of one key range. It
// is a state machine fed with the responder's messages: Start returns the
// first message, Next takes each reply and returns the next message until
// the session is done. It has no goroutines and does no I/O beyond
// reading its Set. Not safe for concurrent use.
//
// At the end both sides know both directions of the difference: the
// initiator from Result, the responder from what Responder.Respond
// returned across the session.
type Session struct {
	side
	params   Params
	lo, hi   Key
	sketches map[[2]Key]*sketchState
	wanted   map[ShortID]*sketchState
	asked    []*sketchState // WANTs in the message being built
	answered []*sketchState // WANTs the reply being handled must answer
	messages int
	done     bool
}

// sketchState follows a range resolved by the responder's sketch.
type sketchState struct {
	lo, hi   Key
	fp       Fingerprint // the responder's, for the final check
	count    uint64
	mine     Aggregate
	peel     peeler
	ext      int
	extras   Aggregate // ours that the responder lacks
	asked    bool      // decoded; cells no longer expected
	missing  int       // asked-for hashes not received yet
	received Aggregate
}

// NewSession prepares a session over the keys of set in [lo, hi): the
// whole scope is (Key{}, End), a time window [TimeBound(from),
// TimeBound(to)).
func NewSession(set Set, lo, hi Key, p Params) (*Session, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if !lo.Less(hi) {
		return nil, fmt.Errorf("empty session range [%v, %v)", lo, hi)
	}
	s := &Session{params: p, lo: lo, hi: hi, sketches: make(map[[2]Key]*sketchState),
		wanted: make(map[ShortID]*sketchState)}
	s.side = newSide(set, &s.params, true)
	return s, nil
}

// Start returns the first message: the range's fingerprint, count and
// newest timestamp. Equal sets end the session with the reply.
func (s *Session) Start(ctx context.Context) ([]*pb.ReconcileFrame, error) {
	agg, err := s.set.Aggregate(ctx, s.lo, s.hi)
	if err != nil {
		return nil, err
	}
	it := rangeItem{lo: s.lo, hi: s.hi, mode: pb.Mode_FINGERPRINT, fp: agg.Fingerprint(), count: agg.Count}
	last, ok, err := s.set.Last(ctx, s.lo, s.hi)
	if err != nil {
		return nil, err
	}
	if ok {
		it.lastTS = last.TS
	}
	s.messages = 1
	return encode(&message{items: []rangeItem{it}}, s.p.FrameSize), nil
}

// Next handles the responder's reply and returns the next message. When
// done is true the session is over and out, if not nil, is a last message
// to deliver without waiting for an answer.
func (s *Session) Next(ctx context.Context, in []*pb.ReconcileFrame) (out []*pb.ReconcileFrame, done bool, err error) {
	if s.done {
		return nil, true, fmt.Errorf("%w: session already done", ErrUnexpected)
	}
	s.messages++
	m, err := decode(in, &s.p.Limits)
	if err != nil {
		return nil, false, err
	}
	s.reset()
	s.answered, s.asked = s.asked, nil
	s.onYouLack(m.youLack)
	for i := range m.items {
		it := &m.items[i]
		switch it.mode {
		case pb.Mode_SKIP:
			err = s.onInfo(ctx, it)
		case pb.Mode_FINGERPRINT:
			err = s.onFingerprint(ctx, it)
		case pb.Mode_KEYLIST:
			err = s.onKeyList(ctx, it)
		case pb.Mode_SKETCH:
			err = s.onSketch(ctx, it)
		default:
			err = fmt.Errorf("%w: %v sent to the initiator", ErrUnexpected, it.mode)
		}
		if err != nil {
			return nil, false, err
		}
	}
	for _, st := range s.answered {
		if err := s.check(ctx, st); err != nil {
			return nil, false, err
		}
	}
	slices.SortFunc(s.out.items, func(a, b rangeItem) int { return a.lo.Compare(b.lo) })
	if !s.out.needsReply() {
		s.done = true
		if len(s.out.items) == 0 && len(s.out.youLack) == 0 {
			return nil, true, nil
		}
		return encode(&s.out, s.p.FrameSize), true, nil
	}
	if s.messages+2 > s.p.MaxMessages {
		return nil, false, ErrTooManyMessages
	}
	s.messages++
	return encode(&s.out, s.p.FrameSize), false, nil
}

// Result returns what the initiator learned; complete once done.
func (s *Session) Result() Diff { return s.diff() }

// Messages returns how many messages the session has sent and received.
func (s *Session) Messages() int { return s.messages }

// onYouLack records hashes the responder says we lack, and matches the
// ones asked for by short ID.
func (s *Session) onYouLack(hs []Hash) {
	s.learnNeed(hs)
	for i := range hs {
		id := shortID(&hs[i])
		if st := s.wanted[id]; st != nil {
			delete(s.wanted, id)
			st.missing--
			st.received = st.received.AddHash(&hs[i])
		}
	}
}

// onSketch adds the responder's cells for a range and peels. Decoded, it
// gives the responder what it lacks and asks for the full hashes of what
// we lack; not decoded, it asks for more cells, or splits the range after
// a few tries.
func (s *Session) onSketch(ctx context.Context, it *rangeItem) error {
	key := [2]Key{it.lo, it.hi}
	st := s.sketches[key]
	switch {
	case st == nil && it.firstCell == 0:
		mine, err := s.set.Aggregate(ctx, it.lo, it.hi)
		if err != nil {
			return err
		}
		st = &sketchState{lo: it.lo, hi: it.hi, fp: it.fp, count: it.count, mine: mine}
		s.sketches[key] = st
	case st == nil || st.asked || it.firstCell != uint64(st.peel.cells()):
		return fmt.Errorf("%w: sketch cells from %d do not continue the sketch", ErrUnexpected, it.firstCell)
	}
	local, err := sketchCells(ctx, s.set, it.lo, it.hi, it.firstCell, uint64(len(it.cells)))
	if err != nil {
		return err
	}
	st.peel.extend(it.cells, local)
	if !st.peel.peel() {
		// Size the extension from what the failed peel says about the
		// difference (the counts of the two sets say little when both
		// sides changed), with a quarter more at least.
		st.ext++
		n := st.peel.cells()
		delta := int64(st.count) - int64(st.mine.Count)
		est := float64(len(st.peel.remote)+len(st.peel.local)) + st.peel.remaining(delta)
		more := max(int(sketchLen(uint64(est*1.25), s.p.SketchMargin))-n, n/4+8)
		if st.ext > 6 || n+more > s.p.maxRangeCells() {
			return s.fallback(ctx, st)
		}
		return s.emit(rangeItem{lo: it.lo, hi: it.hi, mode: pb.Mode_MORE_CELLS,
			firstCell: uint64(n), cellCount: uint64(more)})
	}
	var extras []Key
	if len(st.peel.local) > 0 { // a scan of the range finds them
		if extras, err = keysWithIDs(ctx, s.set, it.lo, it.hi, st.peel.local); err != nil {
			return err
		}
	}
	if len(extras) != len(st.peel.local) {
		return s.fallback(ctx, st) // decoded an element we do not hold
	}
	s.give(extras)
	for i := range extras {
		st.extras = st.extras.AddHash(&extras[i].Hash)
	}
	st.asked = true
	if len(st.peel.remote) == 0 {
		return s.check(ctx, st)
	}
	st.missing = len(st.peel.remote)
	for _, id := range st.peel.remote {
		s.wanted[id] = st
	}
	s.asked = append(s.asked, st)
	return s.emit(rangeItem{lo: it.lo, hi: it.hi, mode: pb.Mode_WANT, ids: st.peel.remote})
}

// check verifies a decoded range: our keys, less what the responder
// lacks, plus what it sent us, must have the responder's fingerprint. A
// failure (a sketch that decoded wrongly, or a store that changed under
// the session) falls back to splitting the range.
func (s *Session) check(ctx context.Context, st *sketchState) error {
	delete(s.sketches, [2]Key{st.lo, st.hi})
	for _, id := range st.peel.remote {
		if s.wanted[id] == st {
			delete(s.wanted, id)
		}
	}
	theirs := Aggregate{Count: st.mine.Count - st.extras.Count + st.received.Count,
		Sum: st.mine.Sum.Sub(st.extras.Sum).Add(st.received.Sum)}
	if st.missing == 0 && theirs.Count == st.count && theirs.Fingerprint() == st.fp {
		return nil
	}
	return s.fallback(ctx, st)
}

// fallback resolves a range without sketches.
func (s *Session) fallback(ctx context.Context, st *sketchState) error {
	delete(s.sketches, [2]Key{st.lo, st.hi})
	mine, err := s.set.Aggregate(ctx, st.lo, st.hi)
	if err != nil {
		return err
	}
	return s.strategize(ctx, st.lo, st.hi, mine, st.count, 0, false)
}
