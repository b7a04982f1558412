package reconcile

import (
	"context"
	"math"
	"sort"

	"github.com/storesync/storesync/pb"
)

// A sketch of a large range costs a read of the range once it needs more
// cells than the tree keeps per subtree (cachedCells). A large range
// with a difference too large for those cells is therefore sketched in
// parts cut along the tree, each part sized for its share of the
// difference: the responder sends the parts' sketches at once, the
// initiator asks for them, and every part's cells come from the memos of
// the subtrees it covers. A difference spread evenly decodes at the first
// try; a part that does not falls back on its own.

// partScanMax is the size of a range whose keys are cheap to read whole:
// it is not cut into parts, and its cells beyond the memos are read.
const partScanMax = 4096

// maxSketchParts bounds the parts of one range.
const maxSketchParts = 1024

// stuckPieces is how many pieces a large range whose sketch is known to
// be stuck (partStuck) is sketched again in: two twins far apart fall
// in one piece about one time in eight.
const stuckPieces = 8

// partCells is the sketch length for a part holding count of the total
// keys of a range whose difference is d: its share of d, spread evenly,
// plus twice the share's standard deviation.
func partCells(count, total, d uint64, margin int) uint64 {
	if total == 0 {
		return sketchLen(d, margin)
	}
	share := float64(d) * float64(count) / float64(total)
	return sketchLen(uint64(math.Ceil(share+2*math.Sqrt(share))), margin)
}

// cutParts cuts [lo, hi), of which we hold mine, along the tree until
// every part's share of a difference of d fits the memos or is cheap to
// read, with at most limit parts.
func (s *side) cutParts(ctx context.Context, lo, hi Key, mine Aggregate, d uint64, limit int) ([]part, error) {
	parts := []part{{lo, hi, mine.Count}}
	for {
		var next []part
		cut := false
		for _, p := range parts {
			if p.n <= partScanMax || partCells(p.n, mine.Count, d, s.p.SketchMargin) <= cachedCells {
				next = append(next, p)
				continue
			}
			pieces, err := s.splitParts(ctx, p.lo, p.hi)
			if err != nil {
				return nil, err
			}
			if len(pieces) == 0 {
				next = append(next, p)
				continue
			}
			cut = true
			next = append(next, pieces...)
		}
		if !cut {
			return parts, nil
		}
		// Grouping before the limit is checked keeps the parts few: a
		// cut part's children share its difference, and most of them
		// join again.
		next = s.groupParts(next, mine.Count, d)
		if len(next) > limit {
			return parts, nil
		}
		parts = next
	}
}

// splitCounter is a Set that counts the parts of its Splits from what it
// holds in memory (a Tree, from the entries of the node it cuts), about
// as many keys as each holds: enough to size parts and sketches.
type splitCounter interface {
	splitCounts(ctx context.Context, lo, hi Key) ([]Key, []uint64, error)
}

// splitParts returns the parts of [lo, hi) cut at our set's Splits, each
// with about how many of our keys it holds, or nil when the range does
// not split.
func (s *side) splitParts(ctx context.Context, lo, hi Key) ([]part, error) {
	var (
		bounds []Key
		counts []uint64
		err    error
	)
	if c, ok := s.set.(splitCounter); ok {
		bounds, counts, err = c.splitCounts(ctx, lo, hi)
	} else {
		bounds, err = s.set.Splits(ctx, lo, hi)
	}
	if err != nil || len(bounds) == 0 {
		return nil, err
	}
	out := make([]part, 0, len(bounds)+1)
	for i, r := range cutRange(lo, hi, bounds) {
		if counts != nil {
			out = append(out, part{r.Lo, r.Hi, counts[i]})
			continue
		}
		agg, err := s.set.Aggregate(ctx, r.Lo, r.Hi)
		if err != nil {
			return nil, err
		}
		out = append(out, part{r.Lo, r.Hi, agg.Count})
	}
	return out, nil
}

// groupParts joins neighbouring parts for as long as the joined part's
// share of d still fits the memos: fewer, fuller sketches cost fewer
// cells (a sketch's margin is paid per part) and fewer items.
func (s *side) groupParts(parts []part, total, d uint64) []part {
	out := parts[:1]
	for _, p := range parts[1:] {
		last := &out[len(out)-1]
		if joined := last.n + p.n; partCells(joined, total, d, s.p.SketchMargin) <= cachedCells {
			last.hi, last.n = p.hi, joined
			continue
		}
		out = append(out, p)
	}
	return out
}

// sketchParts sketches [lo, hi) in parts when the range is too large to
// read and its difference d too large for the memos: the responder sends
// each part's sketch, the initiator asks for them. It reports false,
// having sent nothing, when the range is not worth cutting or the reply
// has no room for the parts.
func (s *side) sketchParts(ctx context.Context, lo, hi Key, mine Aggregate, d uint64) (bool, error) {
	if mine.Count <= partScanMax || sketchLen(d, s.p.SketchMargin) <= cachedCells {
		return false, nil
	}
	room := s.room()
	parts, err := s.cutParts(ctx, lo, hi, mine, d, min(room.items, maxSketchParts))
	if err != nil || len(parts) < 2 {
		return false, err
	}
	need := budget{items: len(parts)}
	cells := make([]uint64, len(parts))
	for i, p := range parts {
		cells[i] = partCells(p.n, mine.Count, d, s.p.SketchMargin)
		if cells[i] > uint64(s.p.maxRangeCells()) {
			return false, nil
		}
		need.cells += int(cells[i])
	}
	if !room.covers(need) {
		return false, nil
	}
	for i, p := range parts {
		c := cells[i]
		if s.initiator {
			err = s.emit(ctx, rangeItem{lo: p.lo, hi: p.hi, mode: pb.Mode_MORE_CELLS, cellCount: c})
		} else {
			// The sketch carries our fingerprint of the part, which
			// the peer checks: this one aggregate is exact.
			agg, aerr := s.set.Aggregate(ctx, p.lo, p.hi)
			if aerr != nil {
				return false, aerr
			}
			err = s.sendSketch(ctx, p.lo, p.hi, agg, 0, c, 0)
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// resketchPieces goes on with a range whose sketch did not decode when
// its next cells lie past the memos, which the responder could only
// compute by reading the range (and not at all past maxReplyScan keys):
// it cuts the range along the tree and asks for a sketch of each piece,
// sized for the piece's share of what is still undecoded. What was
// decoded is carried over into the pieces, which take it out of their
// cells as they arrive, so a piece's sketch pays only for the rest. The
// common cause is two differences that fall in the same cells as far as
// the memos reach (about one part in a thousand): they cancel there in
// any sketch of a range holding both, and pieces of the range part them.
// With fine > 0 (a residue known to be stuck, partStuck) it cuts at
// least that many pieces where the tree allows, not one level. Every
// piece keeps the cells the range was left with (sketchState.parent).
// It reports false, having sent nothing, when the range does not cut, a
// piece needs more cells than the memos hold, or the reply has no room
// for the pieces.
func (s *Session) resketchPieces(ctx context.Context, st *sketchState, est float64, fine int) (bool, error) {
	var (
		pieces []part
		err    error
	)
	if fine > 0 {
		whole := part{st.lo, st.hi, st.mine.Count}
		pieces, err = s.pieces(ctx, whole, max(st.mine.Count/uint64(fine), 1), fine)
	} else {
		pieces, err = s.splitParts(ctx, st.lo, st.hi)
	}
	if err != nil {
		return false, err
	}
	// A decoded element is known by its short ID alone, so it must fall
	// in one piece: a bound within its window goes.
	pieces = joinAcross(pieces, st.peel.remote, st.peel.local)
	if len(pieces) < 2 || len(pieces) > maxSketchParts {
		return false, nil
	}
	remote := make([][]ShortID, len(pieces))
	local := make([][]ShortID, len(pieces))
	place := func(out [][]ShortID, ids []ShortID) {
		for _, id := range ids {
			wlo, _ := id.window()
			// An ID from outside the range (a forged sketch) goes to
			// the last piece, whose check then fails.
			i := min(sort.Search(len(pieces), func(i int) bool { return wlo.Less(pieces[i].hi) }), len(pieces)-1)
			out[i] = append(out[i], id)
		}
	}
	place(remote, st.peel.remote)
	place(local, st.peel.local)
	decoded := len(st.peel.remote) + len(st.peel.local)
	left := max(est-float64(decoded), 2)
	cells := make([]uint64, len(pieces))
	need := budget{items: len(pieces)}
	margin := s.p.SketchMargin
	if fine > 0 {
		// What is left is the stuck group, counted from its cells:
		// the margin that covers an estimate's error is not needed.
		margin = 0
	}
	for i, p := range pieces {
		share := left * float64(p.n) / float64(max(st.mine.Count, 1))
		// A piece that holds none of our keys may hold the peer's:
		// it gets the cells of one element at least.
		cells[i] = sketchLen(max(uint64(math.Ceil(share+2*math.Sqrt(share))), 1), margin)
		if cells[i] > min(cachedCells, uint64(s.p.maxRangeCells())) {
			return false, nil // the pieces too are past the memos
		}
		need.cells += int(cells[i])
	}
	if !s.room().covers(need) {
		return false, nil
	}
	mine := make([]Aggregate, len(pieces))
	for i, p := range pieces {
		// A piece's sum checks its result (check): exact.
		if mine[i], err = s.set.Aggregate(ctx, p.lo, p.hi); err != nil {
			return false, err
		}
	}
	s.drop(st)
	parent := st.peel.diff // read only from here on
	for i, p := range pieces {
		// A piece keeps how far the range's residue is known to stay
		// stuck: a piece stuck again most likely holds that group, and
		// twice those cells would not part it. (Without it, the model
		// test of planted twins took 224 round trips rather than 204,
		// without MATCH.)
		ps := &sketchState{lo: p.lo, hi: p.hi, mine: mine[i], parent: parent, shared: st.shared}
		ps.peel.remote, ps.peel.local = remote[i], local[i]
		ps.peel.seen = make(map[ShortID]struct{}, len(remote[i])+len(local[i]))
		for _, ids := range [][]ShortID{remote[i], local[i]} {
			for _, id := range ids {
				ps.peel.seen[id] = struct{}{}
			}
		}
		s.sketches[[2]Key{p.lo, p.hi}] = ps
		if err := s.emit(ctx, rangeItem{lo: p.lo, hi: p.hi, mode: pb.Mode_MORE_CELLS, cellCount: cells[i]}); err != nil {
			return false, err
		}
	}
	return true, nil
}

// joinAcross joins the neighbouring pieces on either side of every bound
// that falls within the window of one of ids (ShortID.window), so that
// each ID's window lies in one piece.
func joinAcross(pieces []part, ids ...[]ShortID) []part {
	for _, list := range ids {
		for _, id := range list {
			wlo, whi := id.window()
			i := sort.Search(len(pieces), func(i int) bool { return wlo.Less(pieces[i].hi) })
			for i < len(pieces)-1 && pieces[i].hi.Less(whi) {
				pieces[i].hi, pieces[i].n = pieces[i+1].hi, pieces[i].n+pieces[i+1].n
				pieces = append(pieces[:i+1], pieces[i+2:]...)
			}
		}
	}
	return pieces
}
