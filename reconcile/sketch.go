package reconcile

import (
	"context"
	"fmt"
	"slices"

	"github.com/storesync/storesync/pb"
)

// sketchState follows a range the initiator resolves from the
// responder's sketch: cells arrive until the difference peels, then the
// initiator gives what the responder lacks and asks for the hashes it
// lacks, in as many WANTs as the limits require, and checks the result
// against the responder's fingerprint.
type sketchState struct {
	lo, hi   Key
	fp       Fingerprint // the responder's, for the final check
	count    uint64
	mine     Aggregate
	peel     peeler
	ext      int
	extras   Aggregate // ours that the responder lacks, given
	decoded  bool      // cells no longer expected
	want     []ShortID // the responder's that we lack, not asked for yet
	asking   []ShortID // asked for by the WANT awaiting its answer
	missing  int       // asked for, not received yet
	received Aggregate
}

// onSketch adds the responder's cells for a range and peels. Decoded, it
// gives the responder what it lacks and asks for the full hashes of what
// we lack (WANT); not decoded, it asks for more cells, or splits the
// range after a few tries or when the reply has no room for them.
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
	case st == nil || st.decoded || it.firstCell != uint64(st.peel.cells()):
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
		if n+more > cachedCells && s.asks >= 3 && !s.closing(st.mine.Count) {
			// Past the memos: ask again in parts sized for the estimate.
			if ok, err := s.sketchParts(ctx, it.lo, it.hi, st.mine, uint64(est*1.5)+1); ok || err != nil {
				s.drop(st)
				return err
			}
		}
		ask := rangeItem{lo: it.lo, hi: it.hi, mode: pb.Mode_MORE_CELLS, firstCell: uint64(n), cellCount: uint64(more)}
		if st.ext > 6 || n+more > s.p.maxRangeCells() || !s.room().covers(costOf(&ask)) ||
			s.closing(st.mine.Count) {
			return s.fallback(ctx, st)
		}
		return s.emit(ctx, ask)
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
	// What we give goes now, in full, or the range falls back: the
	// responder learns nothing from a part. What we ask for may go over
	// several messages, each WANT asking for a reply.
	need := budget{lack: len(extras)}
	if len(st.peel.remote) > 0 {
		need.items, need.ids = 1, 1
	}
	if room := s.room(); room.items < 0 || !room.covers(need) {
		return s.fallback(ctx, st)
	}
	if err := s.give(ctx, extras); err != nil {
		return err
	}
	for i := range extras {
		st.extras = st.extras.AddHash(&extras[i].Hash)
	}
	st.decoded = true
	st.want = st.peel.remote
	if len(st.want) == 0 {
		return s.check(ctx, st)
	}
	return s.askWant(ctx, st)
}

// askWant asks for as many of the hashes a decoded sketch says we lack as
// one item and the reply allow.
func (s *Session) askWant(ctx context.Context, st *sketchState) error {
	room := s.room()
	n := min(len(st.want), room.ids, s.p.maxListed())
	if n < 1 || room.items < 1 {
		return s.fallback(ctx, st)
	}
	ids := st.want[:n:n]
	st.want = st.want[n:]
	st.asking = ids
	st.missing += n
	for _, id := range ids {
		s.wanted[id] = st
	}
	s.asked = append(s.asked, st)
	return s.emit(ctx, rangeItem{lo: st.lo, hi: st.hi, mode: pb.Mode_WANT, ids: ids})
}

// takeAnswers applies the answers to our WANTs that a reply carries and
// returns its other items. An answer must answer a WANT of exactly its
// range, ID for ID, with keys in the range: anything else breaks the
// protocol.
func (s *Session) takeAnswers(items []rangeItem) ([]rangeItem, error) {
	rest := items[:0]
	for i := range items {
		it := &items[i]
		if len(it.answers) == 0 {
			rest = append(rest, *it)
			continue
		}
		j := slices.IndexFunc(s.answered, func(st *sketchState) bool { return st.lo == it.lo && st.hi == it.hi })
		if j < 0 || len(it.ids) > 0 || len(s.answered[j].asking) != len(it.answers) {
			return nil, fmt.Errorf("%w: an answer to no WANT of ours", ErrUnexpected)
		}
		st := s.answered[j]
		for k, a := range it.answers {
			if !a.held {
				continue // not held: missing stays, and advance falls back
			}
			id := st.asking[k]
			key := a.key(id)
			if key.Less(it.lo) || !key.Less(it.hi) {
				return nil, badFrame("an answered key outside its range")
			}
			if s.wanted[id] != st {
				continue // answered twice
			}
			delete(s.wanted, id)
			s.learnNeed([]Key{key})
			st.missing--
			st.received = st.received.AddHash(&key.Hash)
		}
		st.asking = nil
	}
	return rest, nil
}

// advance continues a sketch whose WANT the reply answered: it asks for
// the next hashes, or checks the range once all have come.
func (s *Session) advance(ctx context.Context, st *sketchState) error {
	switch {
	case st.missing > 0: // the responder's store changed under the session
		return s.fallback(ctx, st)
	case len(st.want) > 0:
		return s.askWant(ctx, st)
	}
	return s.check(ctx, st)
}

// check verifies a decoded range: our keys, less what the responder
// lacks, plus what it sent us, must have the responder's fingerprint. A
// failure (a sketch that decoded wrongly, or a store that changed under
// the session) falls back to splitting the range.
func (s *Session) check(ctx context.Context, st *sketchState) error {
	s.drop(st)
	theirs := Aggregate{Count: st.mine.Count - st.extras.Count + st.received.Count,
		Sum: st.mine.Sum.Sub(st.extras.Sum).Add(st.received.Sum)}
	if st.missing == 0 && theirs.Count == st.count && theirs.Fingerprint() == st.fp {
		return s.settle(ctx)
	}
	return s.fallback(ctx, st)
}

// fallback resolves a range without sketches.
func (s *Session) fallback(ctx context.Context, st *sketchState) error {
	s.drop(st)
	mine, err := s.set.Aggregate(ctx, st.lo, st.hi)
	if err != nil {
		return err
	}
	return s.strategize(ctx, st.lo, st.hi, mine, st.count, 0, false)
}

// drop forgets a sketch and the IDs it still waits for.
func (s *Session) drop(st *sketchState) {
	delete(s.sketches, [2]Key{st.lo, st.hi})
	for _, id := range st.peel.remote {
		if s.wanted[id] == st {
			delete(s.wanted, id)
		}
	}
}
