package reconcile

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/storesync/storesync/pb"
)

// Diff is what one side of a session learned: the hashes it lacks and the
// peer holds (Need), and the hashes it holds and the peer lacks (Have).
type Diff struct {
	Need []Hash
	Have []Hash
}

// side holds what both roles share while handling one incoming message:
// the set, the parameters, the reply being built and what was learned.
type side struct {
	set       Set
	p         *Params
	initiator bool
	out       message
	need      map[Hash]struct{}
	have      map[Hash]struct{}
	// items and cells left for the reply: a reply must stay within the
	// limits its receiver enforces, whatever the message asked for.
	items, cells int
}

func newSide(set Set, p *Params, initiator bool) side {
	return side{set: set, p: p, initiator: initiator,
		need: make(map[Hash]struct{}), have: make(map[Hash]struct{})}
}

// reset starts a new reply.
func (s *side) reset() {
	s.out = message{}
	s.items, s.cells = s.p.Limits.MaxItems, s.p.Limits.MaxCells
}

// spend takes items and cells from the reply's budget.
func (s *side) spend(items, cells int) error {
	s.items -= items
	s.cells -= cells
	if s.items < 0 || s.cells < 0 {
		return fmt.Errorf("%w: the reply would exceed the limits", ErrTooLarge)
	}
	return nil
}

func (s *side) learnNeed(hs []Hash) {
	for _, h := range hs {
		s.need[h] = struct{}{}
	}
}

func (s *side) learnHave(keys []Key) {
	for i := range keys {
		s.have[keys[i].Hash] = struct{}{}
	}
}

// diff returns what was learned, sorted.
func (s *side) diff() Diff {
	return Diff{Need: sortedHashes(s.need), Have: sortedHashes(s.have)}
}

func sortedHashes(m map[Hash]struct{}) []Hash {
	out := make([]Hash, 0, len(m))
	for h := range m {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Hash) int { return slices.Compare(a[:], b[:]) })
	return out
}

// give sends the peer the hashes of keys it lacks and notes them as ours.
func (s *side) give(keys []Key) {
	s.learnHave(keys)
	s.out.youLack = append(s.out.youLack, hashesOf(keys)...)
}

// emit adds an item to the reply, spending the reply's budget: one item
// and the cells it carries or asks for.
func (s *side) emit(it rangeItem) error {
	if err := s.spend(1, len(it.cells)+int(it.cellCount)); err != nil {
		return err
	}
	s.out.items = append(s.out.items, it)
	return nil
}

// onFingerprint compares the peer's fingerprint of a range with ours and
// answers a difference.
func (s *side) onFingerprint(ctx context.Context, it *rangeItem) error {
	mine, err := s.set.Aggregate(ctx, it.lo, it.hi)
	if err != nil {
		return err
	}
	if mine.Count == it.count && mine.Fingerprint() == it.fp {
		return nil
	}
	// The prefix probe: if the peer's keys are exactly ours up to the
	// peer's newest timestamp, the difference is our newer keys. This is
	// the common case of a node that was offline, and it costs one round
	// trip and nothing beyond the hashes.
	if it.count == 0 || it.lastTS > 0 {
		cut := it.lo
		if it.count > 0 && it.lo.Less(TimeBound(it.lastTS+1)) {
			cut = TimeBound(it.lastTS + 1)
		}
		if cut.Less(it.hi) {
			pre, err := s.set.Aggregate(ctx, it.lo, cut)
			if err != nil {
				return err
			}
			if pre.Count == it.count && pre.Fingerprint() == it.fp {
				return s.sendRange(ctx, cut, it.hi)
			}
		}
	}
	return s.strategize(ctx, it.lo, it.hi, mine, it.count, it.lastTS, true)
}

// sendRange gives the peer every key of [lo, hi). A
// range beyond what one message carries goes in parts: the rest is
// offered as a fingerprint for the next round.
func (s *side) sendRange(ctx context.Context, lo, hi Key) error {
	limit := s.p.maxListed() * 4
	var keys []Key
	var rest Key
	errFull := errStop
	err := s.set.Iterate(ctx, lo, hi, func(k Key) error {
		if len(keys) == limit {
			rest = minimalBound(keys[len(keys)-1], k)
			return errFull
		}
		keys = append(keys, k)
		return nil
	})
	if err != nil && err != errFull {
		return err
	}
	s.give(keys)
	if err == errFull {
		agg, err := s.set.Aggregate(ctx, rest, hi)
		if err != nil {
			return err
		}
		return s.emit(rangeItem{lo: rest, hi: hi, mode: pb.Mode_FINGERPRINT, fp: agg.Fingerprint(), count: agg.Count})
	}
	return nil
}

// strategize chooses how to resolve a range whose fingerprints differ,
// from the two counts: list our keys when we hold few, split along the
// tree when the difference is dense or too large for one sketch, and
// otherwise exchange a sketch sized for the expected difference.
func (s *side) strategize(ctx context.Context, lo, hi Key, mine Aggregate, theirs, theirLast uint64, allowSketch bool) error {
	if mine.Count == 0 || mine.Count <= uint64(s.p.KeyListMax) {
		return s.sendKeyList(ctx, lo, hi)
	}
	if !s.initiator && theirLast > 0 && mine.Count < theirs {
		// We may be the one that is behind: offer our newest timestamp
		// so that the peer can run the prefix probe.
		last, ok, err := s.set.Last(ctx, lo, hi)
		if err != nil {
			return err
		}
		if ok && last.TS < theirLast {
			return s.emit(rangeItem{lo: lo, hi: hi, mode: pb.Mode_FINGERPRINT, fp: mine.Fingerprint(),
				count: mine.Count, lastTS: last.TS})
		}
	}
	d := max(mine.Count, theirs) - min(mine.Count, theirs)
	cells := sketchLen(d, s.p.SketchMargin)
	dense := 4*d > mine.Count+theirs
	if !allowSketch || dense || cells > uint64(s.p.maxRangeCells()) {
		bounds, err := s.set.Splits(ctx, lo, hi)
		if err != nil {
			return err
		}
		if len(bounds) > 0 {
			return s.sendSplit(ctx, lo, hi, bounds)
		}
		return s.sendKeyList(ctx, lo, hi)
	}
	if s.initiator {
		// The responder keeps no state, so the initiator decodes: it
		// asks for the responder's sketch.
		return s.emit(rangeItem{lo: lo, hi: hi, mode: pb.Mode_MORE_CELLS, cellCount: cells})
	}
	return s.sendSketch(ctx, lo, hi, mine, 0, cells)
}

// sketchLen is the sketch length for an expected difference of d. The
// cells a rateless IBLT needs average 1.35·d for large d and relatively
// more for small d; 1.35·d + 4.5·√d + margin covers the 99th percentile
// measured from d = 1 to 10,000 (see TestSketchOverhead), so that one
// sketch almost always decodes and the rare miss costs a small extension.
func sketchLen(d uint64, margin int) uint64 {
	return d + d*7/20 + uint64(4.5*math.Sqrt(float64(d))) + uint64(margin)
}

func (s *side) sendSketch(ctx context.Context, lo, hi Key, mine Aggregate, first, n uint64) error {
	if n > uint64(s.cells) {
		return fmt.Errorf("%w: the reply would exceed the limits", ErrTooLarge)
	}
	cells, err := sketchCells(ctx, s.set, lo, hi, first, n)
	if err != nil {
		return err
	}
	return s.emit(rangeItem{lo: lo, hi: hi, mode: pb.Mode_SKETCH, fp: mine.Fingerprint(), count: mine.Count,
		firstCell: first, cells: cells})
}

func (s *side) sendKeyList(ctx context.Context, lo, hi Key) error {
	keys, err := keysIn(ctx, s.set, lo, hi)
	if err != nil {
		return err
	}
	if len(keys) > s.p.maxListed() {
		// Only a range inside one leaf ends up here, and leaves are far
		// smaller; split by count to stay within a frame all the same.
		var bounds []Key
		for i := s.p.maxListed(); i < len(keys); i += s.p.maxListed() {
			bounds = append(bounds, minimalBound(keys[i-1], keys[i]))
		}
		return s.sendSplit(ctx, lo, hi, bounds)
	}
	return s.emit(rangeItem{lo: lo, hi: hi, mode: pb.Mode_KEYLIST, hashes: hashesOf(keys)})
}

// sendSplit offers the fingerprints of the parts of [lo, hi) cut at
// bounds; the last part also carries our newest timestamp for the prefix
// probe. The peer answers only the parts that differ.
func (s *side) sendSplit(ctx context.Context, lo, hi Key, bounds []Key) error {
	if len(bounds) >= s.items {
		return fmt.Errorf("%w: the reply would exceed the limits", ErrTooLarge)
	}
	prev := lo
	for i := 0; i <= len(bounds); i++ {
		end := hi
		if i < len(bounds) {
			end = bounds[i]
		}
		agg, err := s.set.Aggregate(ctx, prev, end)
		if err != nil {
			return err
		}
		it := rangeItem{lo: prev, hi: end, mode: pb.Mode_FINGERPRINT, fp: agg.Fingerprint(), count: agg.Count}
		if i == len(bounds) && agg.Count > 0 {
			last, ok, err := s.set.Last(ctx, prev, end)
			if err != nil {
				return err
			}
			if ok {
				it.lastTS = last.TS
			}
		}
		if err := s.emit(it); err != nil {
			return err
		}
		prev = end
	}
	return nil
}

// onKeyList compares the peer's complete list of a range with ours: we
// learn both directions at once, give the peer what it lacks and tell it
// which of its listed hashes we lack.
func (s *side) onKeyList(ctx context.Context, it *rangeItem) error {
	theirs := make(map[Hash]struct{}, len(it.hashes))
	for _, h := range it.hashes {
		theirs[h] = struct{}{}
	}
	var extras []Key
	err := s.set.Iterate(ctx, it.lo, it.hi, func(k Key) error {
		if _, ok := theirs[k.Hash]; ok {
			delete(theirs, k.Hash)
		} else {
			extras = append(extras, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.give(extras)
	if len(theirs) > 0 {
		missing := make([]Hash, 0, len(theirs))
		ids := make([]ShortID, 0, len(theirs))
		for _, h := range it.hashes {
			if _, ok := theirs[h]; ok {
				missing = append(missing, h)
				ids = append(ids, shortID(&h))
			}
		}
		s.learnNeed(missing)
		return s.emit(rangeItem{lo: it.lo, hi: it.hi, mode: pb.Mode_SKIP, ids: ids})
	}
	return nil
}

// onInfo takes note of the peer's word that it lacks the listed keys of
// ours.
func (s *side) onInfo(ctx context.Context, it *rangeItem) error {
	keys, err := keysWithIDs(ctx, s.set, it.lo, it.hi, it.ids)
	if err != nil {
		return err
	}
	s.learnHave(keys)
	return nil
}
