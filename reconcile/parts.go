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

// sketchPart is a piece of a range and our aggregate of it.
type sketchPart struct {
	lo, hi Key
	agg    Aggregate
}

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
func (s *side) cutParts(ctx context.Context, lo, hi Key, mine Aggregate, d uint64, limit int) ([]sketchPart, error) {
	parts := []sketchPart{{lo: lo, hi: hi, agg: mine}}
	for {
		var next []sketchPart
		cut := false
		for _, p := range parts {
			if p.agg.Count <= partScanMax || partCells(p.agg.Count, mine.Count, d, s.p.SketchMargin) <= cachedCells {
				next = append(next, p)
				continue
			}
			bounds, err := s.set.Splits(ctx, p.lo, p.hi)
			if err != nil {
				return nil, err
			}
			if len(bounds) == 0 {
				next = append(next, p)
				continue
			}
			cut = true
			pieces, err := s.cutAt(ctx, p.lo, p.hi, bounds)
			if err != nil {
				return nil, err
			}
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

// cutAt returns the parts of [lo, hi) cut at bounds, with our aggregate
// of each.
func (s *side) cutAt(ctx context.Context, lo, hi Key, bounds []Key) ([]sketchPart, error) {
	out := make([]sketchPart, 0, len(bounds)+1)
	for _, r := range cutRange(lo, hi, bounds) {
		agg, err := s.set.Aggregate(ctx, r.Lo, r.Hi)
		if err != nil {
			return nil, err
		}
		out = append(out, sketchPart{lo: r.Lo, hi: r.Hi, agg: agg})
	}
	return out, nil
}

// groupParts joins neighbouring parts for as long as the joined part's
// share of d still fits the memos: fewer, fuller sketches cost fewer
// cells (a sketch's margin is paid per part) and fewer items.
func (s *side) groupParts(parts []sketchPart, total, d uint64) []sketchPart {
	out := parts[:1]
	for _, p := range parts[1:] {
		last := &out[len(out)-1]
		joined := last.agg.Add(p.agg)
		if partCells(joined.Count, total, d, s.p.SketchMargin) <= cachedCells {
			last.hi, last.agg = p.hi, joined
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
		cells[i] = partCells(p.agg.Count, mine.Count, d, s.p.SketchMargin)
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
			err = s.sendSketch(ctx, p.lo, p.hi, p.agg, 0, c, 0)
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
// It reports false, having sent nothing, when the range does not cut, a
// decoded element's window straddles two pieces, a piece needs more
// cells than the memos hold, or the reply has no room for the pieces.
func (s *Session) resketchPieces(ctx context.Context, st *sketchState, est float64) (bool, error) {
	bounds, err := s.set.Splits(ctx, st.lo, st.hi)
	if err != nil || len(bounds) == 0 || len(bounds) >= maxSketchParts {
		return false, err
	}
	pieces, err := s.cutAt(ctx, st.lo, st.hi, bounds)
	if err != nil {
		return false, err
	}
	remote := make([][]ShortID, len(pieces))
	local := make([][]ShortID, len(pieces))
	place := func(out [][]ShortID, ids []ShortID) bool {
		for _, id := range ids {
			wlo, whi := id.window()
			i := sort.Search(len(pieces), func(i int) bool { return wlo.Less(pieces[i].hi) })
			if i == len(pieces) || pieces[i].hi.Less(whi) {
				return false
			}
			out[i] = append(out[i], id)
		}
		return true
	}
	if !place(remote, st.peel.remote) || !place(local, st.peel.local) {
		return false, nil
	}
	decoded := len(st.peel.remote) + len(st.peel.local)
	left := max(est-float64(decoded), 2)
	cells := make([]uint64, len(pieces))
	need := budget{items: len(pieces)}
	for i, p := range pieces {
		share := left * float64(p.agg.Count) / float64(max(st.mine.Count, 1))
		cells[i] = sketchLen(uint64(math.Ceil(share+2*math.Sqrt(share))), s.p.SketchMargin)
		if cells[i] > min(cachedCells, uint64(s.p.maxRangeCells())) {
			return false, nil // the pieces too are past the memos
		}
		need.cells += int(cells[i])
	}
	if !s.room().covers(need) {
		return false, nil
	}
	s.drop(st)
	for i, p := range pieces {
		ps := &sketchState{lo: p.lo, hi: p.hi, mine: p.agg}
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
