package reconcile

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/storesync/storesync/pb"
)

// Sketches: how both roles size, send and read the rateless IBLT
// sketches of a range (riblt.go has the coding itself, tree_cells.go how
// a tree sums its subtrees' cells, parts.go how a large range is sketched
// in parts), and the initiator's state for a range it decodes.

// twoWayGuess is the difference a sketch is sized for when the counts
// of the two sides are equal.
const twoWayGuess = 8

// sketchLen is the sketch length for an expected difference of d. The
// cells a rateless IBLT needs average 1.35·d for large d and relatively
// more for small d; 1.35·d + 4.5·√d + margin covers the 99th percentile
// measured from d = 1 to 10,000 (see TestSketchOverhead), so that one
// sketch almost always decodes and the rare miss costs a small extension.
func sketchLen(d uint64, margin int) uint64 {
	return d + d*7/20 + uint64(4.5*math.Sqrt(float64(d))) + uint64(margin)
}

// estimateCounts is how many counts of the cells after its own a sketch
// sized for a guess carries (rangeItem.counts): 64 bytes, which the
// common small two-way difference does not need, and which make the
// estimate of a large one (remaining) 15 % close rather than 27 %, so
// that the parts sized from it decode at once.
const estimateCounts = 64

// partsSlack is how much more than the estimated difference the parts
// of a range past the memos are sized for, beyond each part's own spread.
const partsSlack = 1.1

// maxEstimateCounts bounds the counts an item may carry.
const maxEstimateCounts = cachedCells

// sendSketch sends cells [first, first+n) of our sketch of [lo, hi), and
// the counts alone of the spare cells after them; the caller has made
// sure the reply has room for them.
func (s *side) sendSketch(ctx context.Context, lo, hi Key, mine Aggregate, first, n, spare uint64) error {
	cells, err := sketchCells(ctx, s.set, lo, hi, first, n+spare)
	if err != nil {
		return err
	}
	it := rangeItem{lo: lo, hi: hi, mode: pb.Mode_SKETCH, fp: mine.Fingerprint(), count: mine.Count,
		firstCell: first, cells: cells[:n]}
	if spare > 0 {
		it.counts = make([]int8, spare)
		for i, c := range cells[n:] {
			it.counts[i] = int8(c.count)
		}
	}
	return s.emit(ctx, it)
}

// maxWindowKeys bounds the keys read to find the keys of one short ID's
// window (see keyID): at most this many per window, however many an
// author put there. A window denser than that (some 60,000 messages a
// second in one scope) gives up its IDs: the range they came from falls
// back to splitting, which handles density.
const maxWindowKeys = 1024

// keysWithIDs returns the keys of [lo, hi) whose short IDs are in ids,
// in key order, reading only the windows of the IDs: O(log N) a window;
// from memory, for a tree that keeps a key index (WithKeyIndex).
func keysWithIDs(ctx context.Context, s Set, lo, hi Key, ids []ShortID) ([]Key, error) {
	if t, ok := s.(*Tree); ok && t.index != nil {
		return t.keysByIndex(lo, hi, ids), nil
	}
	want := make(map[ShortID]struct{}, len(ids))
	windows := make([]ShortID, 0, len(ids))
	for _, id := range ids {
		want[id] = struct{}{}
		windows = append(windows, id>>idWindowBits)
	}
	slices.Sort(windows)
	var out []Key
	for _, w := range slices.Compact(windows) {
		wlo, whi := (w << idWindowBits).window()
		wlo, whi = maxKey(wlo, lo), minKey(whi, hi)
		if !wlo.Less(whi) {
			continue
		}
		read := 0
		err := s.Iterate(ctx, wlo, whi, func(k Key) error {
			if read++; read > maxWindowKeys {
				return errStop
			}
			if _, ok := want[keyID(&k)]; ok {
				out = append(out, k)
			}
			return nil
		})
		if err != nil && err != errStop {
			return nil, err
		}
	}
	return out, nil
}

// sketchCells computes a set's cells [first, first+n) over [lo, hi).
// A Tree sums its subtrees' cells (tree_cells.go); any other set is read.
func sketchCells(ctx context.Context, s Set, lo, hi Key, first, n uint64) ([]cell, error) {
	if t, ok := s.(*Tree); ok {
		return t.rangeCells(ctx, lo, hi, first, n)
	}
	cells := make([]cell, n)
	err := s.Iterate(ctx, lo, hi, func(k Key) error {
		addRange(cells, first, keyID(&k), 1)
		return nil
	})
	return cells, err
}

// onMoreCells sends the cells of our sketch of a range that the
// initiator asks for, from the room reserved for them.
func (r *Responder) onMoreCells(ctx context.Context, s *side, it *rangeItem) error {
	if it.cellCount > uint64(r.p.maxRangeCells()) {
		return fmt.Errorf("%w: %d cells asked for one range", ErrTooLarge, it.cellCount)
	}
	s.hold = s.hold.minus(budget{items: 1, cells: int(it.cellCount)})
	mine, err := r.set.Aggregate(ctx, it.lo, it.hi)
	if err != nil {
		return err
	}
	if it.firstCell+it.cellCount > cachedCells && mine.Count > partScanMax {
		// Cells past the memos cost a read of the range: within
		// maxReplyScan keys a reply; past it the range goes back to
		// the initiator as a FINGERPRINT, which ends its sketch there.
		if !s.readRange(mine.Count) {
			fp, err := s.fingerprintItem(ctx, it.lo, it.hi, true)
			if err != nil {
				return err
			}
			return s.emit(ctx, fp)
		}
	}
	return s.sendSketch(ctx, it.lo, it.hi, mine, it.firstCell, it.cellCount, 0)
}

// maxReplyScan bounds the keys a reply reads to compute cells past the
// memos (see onMoreCells) and to answer MATCH items: an initiator that
// asks for more does not make the responder read a whole large scope.
const maxReplyScan = 1 << 16

// readRange takes n keys from what the reply may still read
// (maxReplyScan), or reports false, taking nothing, when they are more.
func (s *side) readRange(n uint64) bool {
	if s.scanned+n > maxReplyScan {
		return false
	}
	s.scanned += n
	return true
}

// onWant answers the initiator's WANT with the keys it decoded from our
// sketch as lacking, from the room reserved for them: per ID asked for,
// in order, the key of ours with that short ID (two keys of ours with one
// short ID are a collision someone ground on purpose: one is answered,
// and the sketch check catches what is left out), or "not held".
func (r *Responder) onWant(ctx context.Context, s *side, it *rangeItem) error {
	s.hold = s.hold.minus(budget{items: 1, lack: len(it.ids)})
	keys, err := keysWithIDs(ctx, r.set, it.lo, it.hi, it.ids)
	if err != nil {
		return err
	}
	byID := make(map[ShortID]Key, len(keys))
	for _, k := range keys {
		byID[keyID(&k)] = k
	}
	ans := rangeItem{lo: it.lo, hi: it.hi, mode: pb.Mode_SKIP, answers: make([]answer, len(it.ids))}
	var given []Key
	for i, id := range it.ids {
		if k, ok := byID[id]; ok {
			ans.answers[i] = answerOf(k)
			given = append(given, k)
			delete(byID, id) // an ID asked twice is answered once
		}
	}
	s.learnHave(given)
	return s.emit(ctx, ans)
}

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
	shared   int       // cells as far as which what is left is known to stay stuck (partStuck)
	parent   []cell    // a piece's: the cells the range it was cut from was left with
	extras   Aggregate // ours that the responder lacks, given
	decoded  bool      // cells no longer expected
	got      int       // elements decoded when the last cells came
	want     []ShortID // the responder's that we lack, not asked for yet
	asking   []ShortID // asked for by the WANT awaiting its answer
	missing  int       // asked for, not received yet
	received Aggregate
	// A stuck range's MATCH (match.go): asked once, its answer awaited,
	// and the responder's keys it named, by short ID.
	matchAsked, matching bool
	pattern              []uint64
	patternCells         uint64
	matchMax             int // the most keys its answer may list
	named                map[ShortID]Key
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
	case it.firstCell == 0: // a piece asked for by resketchPieces
		st.fp, st.count = it.fp, it.count
	}
	sent := uint64(len(it.cells))
	spare := uint64(len(it.counts))
	if it.firstCell > 0 || sent+spare > cachedCells {
		spare = 0 // counts serve a first sketch, and only from the memos
	}
	local, err := sketchCells(ctx, s.set, it.lo, it.hi, it.firstCell, sent+spare)
	if err != nil {
		return err
	}
	st.peel.extend(it.cells, local[:sent])
	if spare > 0 {
		st.peel.setSpare(sent, it.counts, local[sent:])
	}
	decoded := st.peel.peel()
	if !decoded {
		if decoded, err = s.freeStuck(ctx, st); err != nil {
			return err
		}
	}
	if !decoded {
		return s.undecoded(ctx, st)
	}
	return s.decodedSketch(ctx, st)
}

// undecoded goes on with a range whose sketch did not decode: it asks for
// more cells, for the keys of a stuck group (askMatch), or for the range
// in parts or pieces, or falls back to splitting it.
func (s *Session) undecoded(ctx context.Context, st *sketchState) error {
	// Size the extension from what the failed peel says about the
	// difference (the counts of the two sets say little when both
	// sides changed), with a quarter more at least.
	st.ext++
	n := st.peel.cells()
	delta := int64(st.count) - int64(st.mine.Count)
	est := float64(len(st.peel.remote)+len(st.peel.local)) + st.peel.remaining(delta)
	more := max(int(sketchLen(uint64(est*1.25), s.p.SketchMargin))-n, n/4+8)
	if 4*est > float64(st.mine.Count+st.count) || est >= maxEstimate {
		// Dense, as the counts would have said had they differed,
		// or past what the residual can tell: splitting beats any
		// sketch sized from it.
		return s.fallback(ctx, st)
	}
	// An extension that decoded nothing more leaves the same
	// group: stuck, as twins are, however it is made up.
	got := len(st.peel.remote) + len(st.peel.local)
	stalled := st.ext > 1 && got == st.got
	st.got = got
	inherited := st.inherits()
	stuck := stalled || inherited || st.peel.twins()
	if stuck {
		if pattern, cells, ok := s.matchPattern(st, inherited); ok {
			if asked, err := s.askMatch(ctx, st, pattern, cells); asked || err != nil {
				return err
			}
		}
		var done bool
		var err error
		if est, more, done, err = s.partStuck(ctx, st, inherited); done || err != nil {
			return err
		}
	}
	if !stuck && n+more > cachedCells && s.asks >= 3 {
		if !s.closing(st.mine.Count) {
			// Past the memos: ask again in parts sized for the
			// estimate and a tenth more (each part also has twice
			// its share's spread, partCells). With the spare counts
			// of a guessed first sketch the estimate is within 15 %;
			// a quarter more, as before them, put one two-way
			// session in sixty at d = 1,000 past 3 × d·32 bytes, a
			// tenth none in 180.
			if ok, err := s.sketchParts(ctx, st.lo, st.hi, st.mine, uint64(est*partsSlack)+1); ok || err != nil {
				s.drop(st)
				return err
			}
		}
		// Cells past the memos also cost the responder a read of
		// the range, and one larger than maxReplyScan it does not
		// read at all: sketch the range's pieces instead, from the
		// memos.
		if ok, err := s.resketchPieces(ctx, st, est, 0); ok || err != nil {
			return err
		}
	}
	ask := rangeItem{lo: st.lo, hi: st.hi, mode: pb.Mode_MORE_CELLS, firstCell: uint64(n), cellCount: uint64(more)}
	if st.ext > 6 || n+more > s.p.maxRangeCells() || !s.room().covers(costOf(&ask)) ||
		s.closing(st.mine.Count) {
		return s.fallback(ctx, st)
	}
	return s.emit(ctx, ask)
}

// decodedSketch goes on with a range whose sketch decoded: it gives the
// responder what it lacks and asks for what we lack.
func (s *Session) decodedSketch(ctx context.Context, st *sketchState) error {
	var extras []Key
	if len(st.peel.local) > 0 { // a scan of the range finds them
		var err error
		if extras, err = keysWithIDs(ctx, s.set, st.lo, st.hi, st.peel.local); err != nil {
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
	if st.allNamed() {
		return s.settleNamed(ctx, st)
	}
	return s.askWant(ctx, st)
}

// inherits reports whether a piece's sketch is left with exactly the
// cells the range it was cut from was left with, as far as the piece's
// cells go: what stopped the range's sketch lies whole in this piece,
// and is stuck as far as the range's cells went.
func (st *sketchState) inherits() bool {
	n := st.peel.cells()
	if len(st.parent) <= n {
		return false
	}
	for i := range n {
		if !st.peel.diff[i].same(&st.parent[i]) {
			return false
		}
	}
	return true
}

// partStuck goes on with a range whose sketch is left with a residue
// known to stay stuck: twins (peeler.twins), what stopped the sketch of
// the range a piece was cut from, which the piece's first cells cannot
// part (inherits), or a residue of which an extension decoded nothing.
// A quarter more cells rarely part such a group, and cells within those
// it is known to share never do. Twice as many as it is known to share
// part two twins three times in four, and a sketch of a range that holds
// only some of the group parts it at once. So while twice the cells lie
// within the memos, a sketch gets them, once; past them, or once that
// failed too, the range is sketched again in eight pieces
// (resketchPieces), and a piece that holds the whole group again in 32:
// its elements lie close together, as twins that an author who grinds
// hashes makes do (they may share hundreds of cells), and pieces part
// them down to single keys. A range that does not cut is extended, and a
// small one that twice the cells did not part falls back to splitting.
// inherited is st.inherits(), which the caller has found. It returns
// the estimate of the difference and the cells to ask for next, or done
// once it has dealt with the range.
func (s *Session) partStuck(ctx context.Context, st *sketchState, inherited bool) (est float64, more int, done bool, err error) {
	n := st.peel.cells()
	doubled := st.shared > 0 && n >= 2*st.shared
	st.shared = max(st.shared, n)
	if inherited {
		st.shared = max(st.shared, len(st.parent))
	}
	// The group is all that is left. The count of its cells (cell 0
	// holds every element) is how many more of it the responder holds
	// than we do, exact but for elements of both sides; and every cell
	// it leaves not empty holds two of its elements at least, each in a
	// few cells.
	left := max(math.Abs(float64(st.peel.groupCount())), float64(st.peel.residue())/2, 2)
	est = float64(len(st.peel.remote)+len(st.peel.local)) + left
	more = max(int(sketchLen(uint64(est*1.25), s.p.SketchMargin))-n, 2*st.shared-n)
	if !doubled && !inherited && n+more <= cachedCells {
		return est, more, false, nil // twice the cells, from the memos: cheap on both sides
	}
	if s.asks >= 3 {
		k := stuckPieces
		if inherited {
			// A piece that holds the whole group again: its keys
			// lie close together, as ground twins do.
			k = 4 * stuckPieces
		}
		if ok, err := s.resketchPieces(ctx, st, est, k); ok || err != nil {
			return est, more, true, err
		}
	}
	if doubled && st.mine.Count <= partScanMax {
		return est, more, true, s.fallback(ctx, st)
	}
	return est, more, false, nil
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
			st.missing--
			s.receive(st, key)
		}
		st.asking = nil
	}
	return rest, nil
}

// receive learns k, a key of the responder's that we lack, as part of
// st's result.
func (s *Session) receive(st *sketchState, k Key) {
	s.learnNeed([]Key{k})
	st.received = st.received.AddHash(&k.Hash)
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
	if st.verified() {
		return s.settle(ctx)
	}
	return s.fallback(ctx, st)
}

// verified reports whether a decoded range's result has the responder's
// fingerprint.
func (st *sketchState) verified() bool {
	theirs := Aggregate{Count: st.mine.Count - st.extras.Count + st.received.Count,
		Sum: st.mine.Sum.Sub(st.extras.Sum).Add(st.received.Sum)}
	return st.missing == 0 && theirs.Count == st.count && theirs.Fingerprint() == st.fp
}

// maxEstimate is the largest difference a residual estimate is trusted
// for: counts travel modulo 256, so the residual of a first sketch of a
// few tens of cells saturates near 45,000 however large the difference
// (two disjoint halves of 300,000 keys read as 45,000), and a range whose
// estimate reaches this is split rather than sketched from it.
const maxEstimate = 1 << 15

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
