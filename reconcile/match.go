package reconcile

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/storesync/storesync/pb"
)

// Matches: the initiator asks the responder for the keys of a group of
// elements stuck in a sketch, named by the cells the group is left in.
//
// A group stays stuck when its elements fall in the same cells as far as
// the sketch goes: twins, which an author who grinds hashes can make
// share hundreds of cells, and which more cells then part only far past
// the memos, and pieces of the range part only once a bound falls
// between them (one round trip for every 32-fold cut, as many as it
// takes to reach single keys for twins next to each other). The cells
// the group is left in, though, are a pattern that hardly any other key
// fits: only keys whose indices below the sketch's length all fall among
// those cells. The responder reads the range, at most maxReplyScan keys
// a reply as for cells past the memos, and names the keys that fit; the
// initiator takes out those it does not hold, and the sketch decodes in
// one round trip, whatever the group's depth. Keys of ours that fit the
// pattern by chance come back too and are left out; the range's
// fingerprint checks the result as it checks any decoded sketch.

// maxPatternCells bounds the cells of a MATCH pattern: a stuck group of
// a few elements is left in a few tens at most.
const maxPatternCells = 64

// maxMatchKeys is the most keys one MATCH asks for and one answer lists.
const maxMatchKeys = 64

// matchFalseMax bounds how many of the keys common to both sides a MATCH
// may expect to fit its pattern by chance (matchExpected): a pattern of
// few cells, which many keys fit, is not asked.
const matchFalseMax = 24

// appendPattern appends the wire form of a pattern: increasing cell
// indices as uvarints, the first one whole and then each one's distance
// from the one before.
func appendPattern(b []byte, pattern []uint64) []byte {
	prev := uint64(0)
	for i, c := range pattern {
		if i == 0 {
			b = binary.AppendUvarint(b, c)
		} else {
			b = binary.AppendUvarint(b, c-prev)
		}
		prev = c
	}
	return b
}

// parsePattern checks and decodes the pattern of an item: only a MATCH to
// the responder carries one, of at most maxPatternCells increasing
// indices below its cell_count, asking for 1 to maxMatchKeys keys and
// listing none; a MATCH without one is an answer and covers no cells.
func parsePattern(w *pb.RangeItem) ([]uint64, error) {
	if w.Mode != pb.Mode_MATCH {
		if len(w.Pattern) > 0 {
			return nil, badFrame("pattern in a %v item", w.Mode)
		}
		return nil, nil
	}
	if len(w.Pattern) == 0 {
		if w.CellCount > 0 {
			return nil, badFrame("a MATCH answer with cell_count")
		}
		return nil, nil
	}
	if w.CellCount == 0 || w.Count < 1 || w.Count > maxMatchKeys || len(w.Keys) > 0 {
		return nil, badFrame("a MATCH of %d cells asking for %d keys", w.CellCount, w.Count)
	}
	var out []uint64
	b := w.Pattern
	for len(b) > 0 {
		if len(out) == maxPatternCells {
			return nil, badFrame("a MATCH pattern of more than %d cells", maxPatternCells)
		}
		v, n := readUvarint(b)
		if n == 0 {
			return nil, badFrame("MATCH pattern: bad uvarint")
		}
		b = b[n:]
		c := v
		if len(out) > 0 {
			if v == 0 || v >= w.CellCount {
				return nil, badFrame("MATCH pattern: indices not increasing within cell_count")
			}
			c = out[len(out)-1] + v
		}
		if c >= w.CellCount {
			return nil, badFrame("MATCH pattern: index %d past cell_count %d", c, w.CellCount)
		}
		out = append(out, c)
	}
	return out, nil
}

// fits reports whether every index of id below n is in pattern (sorted).
func fits(id ShortID, pattern []uint64, n uint64) bool {
	s := newIndexSeq(uint64(id))
	for i := uint64(0); i < n; i = s.next() {
		if _, ok := slices.BinarySearch(pattern, i); !ok {
			return false
		}
	}
	return true
}

// matchExpected is how many of count keys that are not in the group fit
// a pattern of the cells not empty among cells, by chance: each key falls
// in cell 0, and in cell i > 0 with probability 2/(i+2), which a fitting
// key must avoid outside the pattern.
func matchExpected(count uint64, pattern []uint64, n uint64) float64 {
	p := 1.0
	for i := uint64(1); i < n; i++ {
		if _, ok := slices.BinarySearch(pattern, i); !ok {
			p *= float64(i) / float64(i+2)
		}
	}
	return float64(count) * p
}

// patternOf returns the indices of the cells not empty.
func patternOf(cells []cell) []uint64 {
	var out []uint64
	for i := range cells {
		if !cells[i].empty() {
			out = append(out, uint64(i))
		}
	}
	return out
}

// WithoutMatch keeps the session from asking the responder for the keys
// of stuck groups (MATCH), which peers that speak sync 3.0 do not know.
// Call it before Start.
func (s *Session) WithoutMatch() { s.noMatch = true }

// matchPattern returns the pattern and cell count a MATCH for a stuck
// range would ask with, and whether it should be asked: the session may
// ask, the range has not been asked yet, the responder holds few enough
// keys there to read (maxReplyScan for a piece that holds the whole
// group the range it was cut from was left with, whose keys lie close
// together, and for a range whose doubled cells would lie past the
// memos; partScanMax otherwise, as for ranges that twice the cells did
// not part), the session is not in its closing rounds (a MATCH may fail),
// and the pattern is one that few keys fit by chance.
func (s *Session) matchPattern(st *sketchState, inherited bool) ([]uint64, uint64, bool) {
	if s.noMatch || st.matchAsked || s.closing(st.mine.Count) {
		return nil, 0, false
	}
	limit := uint64(partScanMax)
	cells := st.peel.diff
	switch {
	case inherited:
		limit, cells = maxReplyScan, st.parent
	case 2*len(cells) > cachedCells:
		// Twice the cells would cost the responder a read of the
		// range too, and might not part the group.
		limit = maxReplyScan
	}
	if st.count > limit {
		return nil, 0, false
	}
	pattern := patternOf(cells)
	n := uint64(len(cells))
	if len(pattern) == 0 || len(pattern) > maxPatternCells ||
		matchExpected(max(st.count, st.mine.Count), pattern, n) > matchFalseMax {
		return nil, 0, false
	}
	return pattern, n, true
}

// askMatch asks the responder for its keys of a stuck range that fit
// the pattern its group is left in, and for the keys of the elements of
// its that the sketch has decoded so far. It reports false, having sent
// nothing, when the message has no room for the item: the range then
// goes on without a MATCH.
func (s *Session) askMatch(ctx context.Context, st *sketchState, pattern []uint64, n uint64) (bool, error) {
	ask := rangeItem{lo: st.lo, hi: st.hi, mode: pb.Mode_MATCH, cellCount: n, pattern: pattern, count: maxMatchKeys}
	if len(st.peel.remote) <= maxMatchKeys {
		// The keys of the responder's elements decoded so far come
		// with the answer, which then needs no WANT after it.
		ask.ids = slices.Clone(st.peel.remote)
	}
	st.matchAsked = true
	if !s.room().covers(costOf(&ask)) {
		return false, nil
	}
	st.matching = true
	st.pattern, st.patternCells, st.matchMax = pattern, n, int(ask.count)+len(ask.ids)
	return true, s.emit(ctx, ask)
}

// onMatch takes the responder's answer to a MATCH: the keys it names
// that we do not hold are taken out of the sketch as the responder's,
// and if the sketch then decodes, the range goes on as any decoded one,
// without asking for those keys again. Otherwise (the range was not
// read, too many keys fit, or they do not free the group) it goes on as
// a stuck range.
func (s *Session) onMatch(ctx context.Context, it *rangeItem) error {
	st := s.sketches[[2]Key{it.lo, it.hi}]
	if st == nil || !st.matching || len(it.pattern) > 0 {
		return fmt.Errorf("%w: a MATCH answer to no MATCH of ours", ErrUnexpected)
	}
	st.matching = false
	if it.count == 0 {
		if len(it.keys) > 0 {
			return badFrame("a MATCH answer lists keys it says it did not find")
		}
		return s.undecoded(ctx, st)
	}
	if uint64(len(it.keys)) != it.count-1 || len(it.keys) > st.matchMax {
		return badFrame("a MATCH answer of count %d lists %d keys, %d asked for", it.count, len(it.keys), st.matchMax)
	}
	// Our keys that fit the pattern tell which of the answer's keys we
	// hold, and are the group's elements of ours where the answer lacks
	// them. A range too large for what is left of the session's reading
	// (maxStuckScan) is looked up by the answer's IDs alone.
	theirs := make(map[Key]struct{}, len(it.keys))
	for _, k := range it.keys {
		theirs[k] = struct{}{}
	}
	held := make(map[Key]struct{})
	var local []ShortID
	if st.mine.Count <= uint64(maxStuckScan-s.stuckScanned) {
		s.stuckScanned += int(st.mine.Count)
		err := s.set.Iterate(ctx, st.lo, st.hi, func(k Key) error {
			id := keyID(&k)
			if !fits(id, st.pattern, st.patternCells) {
				return nil
			}
			if _, both := theirs[k]; both {
				held[k] = struct{}{}
			} else if _, done := st.peel.seen[id]; !done {
				local = append(local, id)
			}
			return nil
		})
		if err != nil {
			return err
		}
	} else {
		ids := make([]ShortID, len(it.keys))
		for i := range it.keys {
			ids[i] = keyID(&it.keys[i])
		}
		ours, err := keysWithIDs(ctx, s.set, st.lo, st.hi, ids)
		if err != nil {
			return err
		}
		for _, k := range ours {
			held[k] = struct{}{}
		}
	}
	// The keys we lack are the responder's: those of elements decoded
	// before (asked for by ID) are named as they are, the others are
	// the group's.
	byID := make(map[ShortID]Key, len(it.keys))
	var remote []ShortID
	for i := range it.keys {
		k := it.keys[i]
		id := keyID(&k)
		if _, ok := held[k]; ok {
			continue
		}
		if _, twice := byID[id]; twice {
			continue // two keys of one short ID: the check settles it
		}
		byID[id] = k
		if _, done := st.peel.seen[id]; !done {
			remote = append(remote, id)
		}
	}
	if len(remote)+len(local) == 0 || !st.peel.assist(local, remote) {
		return s.undecoded(ctx, st)
	}
	st.named = byID
	return s.decodedSketch(ctx, st)
}

// allNamed reports whether a MATCH answer named every element of the
// responder's that a decoded sketch holds.
func (st *sketchState) allNamed() bool {
	for _, id := range st.peel.remote {
		if _, ok := st.named[id]; !ok {
			return false
		}
	}
	return len(st.named) > 0
}

// settleNamed ends a decoded range whose elements of the responder's a
// MATCH answer named: they are learned without a WANT, the range is
// checked against the responder's fingerprint, and the responder is
// told their IDs (a SKIP item), so that it knows what we lack as it
// would from a WANT.
func (s *Session) settleNamed(ctx context.Context, st *sketchState) error {
	for _, id := range st.peel.remote {
		s.receive(st, st.named[id])
	}
	st.want = nil
	s.drop(st)
	if !st.verified() {
		return s.fallback(ctx, st)
	}
	info := rangeItem{lo: st.lo, hi: st.hi, mode: pb.Mode_SKIP, ids: slices.Clone(st.peel.remote)}
	if !s.room().covers(costOf(&info)) {
		return s.settle(ctx)
	}
	return s.emit(ctx, info)
}

// onMatch answers the initiator's MATCH with our keys of the range that
// fit its pattern, from the room reserved for them, together with our
// keys of the short IDs it lists: count 1 + how many, and the keys. It
// does not answer (count 0) when more keys fit than were asked for, or
// when the range would take the reply past maxReplyScan keys read.
func (r *Responder) onMatch(ctx context.Context, s *side, it *rangeItem) error {
	if len(it.pattern) == 0 || r.noMatch {
		return fmt.Errorf("%w: a MATCH sent to the responder", ErrUnexpected)
	}
	s.hold = s.hold.minus(budget{items: 1, listed: int(it.count) + len(it.ids)})
	ans := rangeItem{lo: it.lo, hi: it.hi, mode: pb.Mode_MATCH}
	mine, err := r.set.Aggregate(ctx, it.lo, it.hi)
	if err != nil {
		return err
	}
	if !s.readRange(mine.Count) {
		return s.emit(ctx, ans)
	}
	var found []Key
	many := false
	err = r.set.Iterate(ctx, it.lo, it.hi, func(k Key) error {
		if !fits(keyID(&k), it.pattern, it.cellCount) {
			return nil
		}
		if uint64(len(found)) == it.count {
			many = true
			return errStop
		}
		found = append(found, k)
		return nil
	})
	if err != nil && err != errStop {
		return err
	}
	if many {
		return s.emit(ctx, ans)
	}
	if len(it.ids) > 0 {
		named, err := keysWithIDs(ctx, r.set, it.lo, it.hi, it.ids)
		if err != nil {
			return err
		}
		found = append(found, named...)
		slices.SortFunc(found, Key.Compare)
		found = slices.Compact(found)
	}
	// What the initiator lacks of them, it says (a SKIP's IDs).
	ans.count, ans.keys = uint64(len(found))+1, found
	return s.emit(ctx, ans)
}
