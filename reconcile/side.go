package reconcile

import (
	"context"
	"math"
	"slices"

	"github.com/storesync/storesync/pb"
)

// Diff is what one side of a session learned: the keys of the messages
// it lacks and the peer holds (Need), and of those it holds and the peer
// lacks (Have), each in key order.
type Diff struct {
	Need []Key
	Have []Key
}

// side holds what both roles share while handling one incoming message:
// the set, the parameters, the reply being built and its budget (see
// budget.go), and what was learned.
type side struct {
	set       Set
	p         *Params
	initiator bool
	out       message
	need      map[Key]struct{}
	have      map[Key]struct{}
	// left is what the reply may still carry; hold is the part of it
	// kept for tasks not handled yet.
	left, hold budget
	// tail is the open hand-back: ranges left for the peer, merged,
	// not yet in the reply.
	tail     Range
	tailOpen bool
	// asks is how many messages asking for a reply the initiator may
	// still send, this one included; unbounded for the responder.
	asks int
	// scanned is how many keys the reply read for cells past the memos
	// and for MATCH answers (readRange).
	scanned uint64
}

func newSide(set Set, p *Params, initiator bool) side {
	return side{set: set, p: p, initiator: initiator, asks: math.MaxInt,
		need: make(map[Key]struct{}), have: make(map[Key]struct{})}
}

// reset starts a new reply with the whole budget the receiver allows.
func (s *side) reset() {
	s.out = message{}
	s.left, s.hold = fullBudget(&s.p.Limits), budget{}
	s.tailOpen = false
}

func (s *side) learnNeed(keys []Key) {
	for _, k := range keys {
		s.need[k] = struct{}{}
	}
}

func (s *side) learnHave(keys []Key) {
	for _, k := range keys {
		s.have[k] = struct{}{}
	}
}

// learned returns how many keys this side has learned, both ways.
func (s *side) learned() int { return len(s.need) + len(s.have) }

// diff returns what was learned, sorted.
func (s *side) diff() Diff {
	return Diff{Need: sortedKeys(s.need), Have: sortedKeys(s.have)}
}

func sortedKeys(m map[Key]struct{}) []Key {
	out := make([]Key, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Key) int { return a.Compare(b) })
	return out
}

// onItem handles an item of a mode both roles receive (SKIP,
// FINGERPRINT, KEYLIST) and hands any other to own, the role's handler,
// which refuses a mode its role never receives.
func (s *side) onItem(ctx context.Context, it *rangeItem, own func(*rangeItem) error) error {
	switch it.mode {
	case pb.Mode_SKIP:
		return s.onInfo(ctx, it)
	case pb.Mode_FINGERPRINT:
		return s.onFingerprint(ctx, it)
	case pb.Mode_KEYLIST:
		return s.onKeyList(ctx, it)
	}
	return own(it)
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

// sendRange gives the peer our keys of [lo, hi), all of which it lacks:
// as many as one item buys (maxListed) and the reply has room for. The
// rest is handed back; the peer, which holds nothing there, answers it
// with an empty key list that buys the next part.
func (s *side) sendRange(ctx context.Context, lo, hi Key) error {
	room := s.room()
	limit := min(s.p.maxListed(), room.lack)
	if room.items < 0 || limit < 1 {
		s.handBack(lo, hi)
		return nil
	}
	var keys []Key
	var rest Key
	err := s.set.Iterate(ctx, lo, hi, func(k Key) error {
		if len(keys) == limit {
			rest = minimalBound(keys[len(keys)-1], k)
			return errStop
		}
		keys = append(keys, k)
		return nil
	})
	if err != nil && err != errStop {
		return err
	}
	if gerr := s.give(ctx, keys); gerr != nil {
		return gerr
	}
	if err == errStop {
		s.handBack(rest, hi)
	}
	return nil
}

// strategize chooses how to resolve a range whose fingerprints differ,
// from the two counts: list our keys when we hold few, split along the
// tree when the difference is dense or too large for one sketch (or for
// what is left of the reply), and otherwise exchange a sketch sized for
// the expected difference.
func (s *side) strategize(ctx context.Context, lo, hi Key, mine Aggregate, theirs, theirLast uint64, allowSketch bool) error {
	if mine.Count == 0 || mine.Count <= uint64(s.p.KeyListMax) {
		return s.sendKeyList(ctx, lo, hi)
	}
	if s.initiator && s.closing(mine.Count) {
		return s.closeIn(ctx, lo, hi, mine)
	}
	if !s.initiator && theirLast > 0 && mine.Count < theirs {
		// We may be the one that is behind: the peer holds keys newer
		// than all of ours.
		last, ok, err := s.set.Last(ctx, lo, hi)
		if err != nil {
			return err
		}
		if ok && last.TS < theirLast && TimeBound(last.TS+1).Less(hi) {
			return s.sendBehind(ctx, lo, hi, mine, last)
		}
	}
	d := max(mine.Count, theirs) - min(mine.Count, theirs)
	guess := d == 0
	if guess {
		// Equal counts and different sets: changes on both sides, of an
		// unknown size. A sketch for a few decodes the common small
		// case at once, and the peel of one that does not estimates
		// the difference for the next cells.
		d = twoWayGuess
	}
	cells := sketchLen(d, s.p.SketchMargin)
	dense := 4*d > mine.Count+theirs
	if !allowSketch || dense || s.initiator && s.asks < 3 {
		return s.split(ctx, lo, hi)
	}
	if ok, err := s.sketchParts(ctx, lo, hi, mine, d); ok || err != nil {
		return err
	}
	room := s.room()
	if cells > uint64(s.p.maxRangeCells()) || cells > uint64(room.cells) || room.items < 1 {
		return s.split(ctx, lo, hi)
	}
	if s.initiator {
		// The responder keeps no state, so the initiator decodes: it
		// asks for the responder's sketch.
		return s.emit(ctx, rangeItem{lo: lo, hi: hi, mode: pb.Mode_MORE_CELLS, cellCount: cells})
	}
	var spare uint64
	if guess && cells+estimateCounts <= min(cachedCells, uint64(room.cells)) {
		spare = estimateCounts
	}
	return s.sendSketch(ctx, lo, hi, mine, 0, cells, spare)
}

// sendBehind answers a range in which the peer holds keys newer than
// all of ours: a fingerprint of the range up to our newest timestamp and
// an empty key list above it, for which the peer gives us its newer keys
// at once. When our keys are a prefix of the peer's, the first part is
// equal and one round trip settles the range, as the peer's prefix probe
// would; when they are not, the first part goes on as usual and no round
// trip was spent on finding out.
func (s *side) sendBehind(ctx context.Context, lo, hi Key, mine Aggregate, last Key) error {
	if s.room().items < 2 {
		s.handBack(lo, hi)
		return nil
	}
	cut := TimeBound(last.TS + 1)
	if err := s.emit(ctx, rangeItem{lo: lo, hi: cut, mode: pb.Mode_FINGERPRINT, fp: mine.Fingerprint(),
		count: mine.Count, lastTS: last.TS}); err != nil {
		return err
	}
	return s.emit(ctx, rangeItem{lo: cut, hi: hi, mode: pb.Mode_KEYLIST})
}

// split offers the peer the fingerprints of the parts of [lo, hi) along
// the tree, or lists our keys when the range lies within one leaf.
func (s *side) split(ctx context.Context, lo, hi Key) error {
	bounds, err := s.set.Splits(ctx, lo, hi)
	if err != nil {
		return err
	}
	if len(bounds) > 0 {
		return s.sendSplit(ctx, lo, hi, bounds)
	}
	return s.sendKeyList(ctx, lo, hi)
}

// sendKeyList lists our keys of [lo, hi), which the caller knows to be
// few: at most KeyListMax, at most maxListed in a session's closing
// rounds, or one leaf.
func (s *side) sendKeyList(ctx context.Context, lo, hi Key) error {
	keys, err := keysIn(ctx, s.set, lo, hi)
	if err != nil {
		return err
	}
	if n := s.p.maxListed(); len(keys) > n {
		// Only a range inside one leaf ends up here, and leaves are far
		// smaller; split by count to stay within the limits all the same.
		var bounds []Key
		for i := n; i < len(keys); i += n {
			bounds = append(bounds, minimalBound(keys[i-1], keys[i]))
		}
		return s.sendSplit(ctx, lo, hi, bounds)
	}
	return s.emitOrHandBack(ctx, rangeItem{lo: lo, hi: hi, mode: pb.Mode_KEYLIST, keys: keys})
}

// sendSplit offers the fingerprints of the parts of [lo, hi) cut at
// bounds; the last part also carries our newest timestamp for the prefix
// probe. The peer answers only the parts that differ. When the reply has
// room for fewer parts, neighbouring parts are grouped; with room for
// fewer than two, the range is handed back whole.
func (s *side) sendSplit(ctx context.Context, lo, hi Key, bounds []Key) error {
	k := s.room().items
	if k < 2 {
		s.handBack(lo, hi)
		return nil
	}
	if len(bounds)+1 > k {
		bounds = groupBounds(bounds, k)
	}
	for i, r := range cutRange(lo, hi, bounds) {
		it, err := s.fingerprintItem(ctx, r.Lo, r.Hi, i == len(bounds))
		if err != nil {
			return err
		}
		if err := s.emit(ctx, it); err != nil {
			return err
		}
	}
	return nil
}

// groupBounds keeps k-1 of the bounds, evenly spread, so that the
// len(bounds)+1 parts become k parts of about equal numbers of the
// original ones. It needs 2 <= k <= len(bounds).
func groupBounds(bounds []Key, k int) []Key {
	p := len(bounds) + 1
	out := make([]Key, 0, k-1)
	for i := 1; i < k; i++ {
		out = append(out, bounds[i*p/k-1])
	}
	return out
}

// onInfo takes note of the peer's word that it lacks the listed keys of
// ours.
func (s *side) onInfo(ctx context.Context, it *rangeItem) error {
	keys, err := keysWithIDs(ctx, s.set, it.lo, it.hi, it.ids)
	if err != nil {
		return err
	}
	s.learnHave(keys)
	return s.settle(ctx)
}
