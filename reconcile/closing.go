package reconcile

import (
	"context"

	"github.com/storesync/storesync/pb"
)

// The closing rounds of a session. A session that ends incomplete must
// still have learned something, or a caller that starts session after
// session would never converge. What ends a range within one round trip
// is a key list: the peer resolves it in its reply (onKeyList), at
// worst in part, and a range whose fingerprints differ always yields
// something. So when the initiator has few messages left, it stops
// spending round trips on sketches that may fail and on descending one
// tree level at a time: it cuts differing ranges into parts small enough
// to list, as many as the reply allows, and lists such parts once the
// responder has said which of them differ.

// descent estimates how many splits take a range of n keys down to parts
// a key list covers (maxListed keys), at 16 parts a split (the tree's
// nodes hold 32 entries on average, and the parts of a split are cut at
// its nodes).
func (s *side) descent(n uint64) int {
	h := 0
	for ; n > uint64(s.p.maxListed()); n /= 16 {
		h++
	}
	return h
}

// closing reports whether the initiator is in the closing rounds for a
// range of n of its keys: when its remaining messages leave no room for
// a round trip that may fail (a sketch) before the descent to listable
// parts, and always in its last two messages that ask for a reply, in
// which a list is resolved by the reply.
func (s *side) closing(n uint64) bool { return s.asks <= 1+max(1, s.descent(n)) }

// closeIn resolves a differing range of the initiator's when the
// session's remaining messages would not let a normal descent reach the
// bottom: it lists the range if it can, and otherwise cuts it into
// listable parts. In the very last message that may ask for a reply,
// parts would be answered too late: the range is handed back, and
// gamble may list its first keys once every range that can be listed
// whole has been.
func (s *side) closeIn(ctx context.Context, lo, hi Key, mine Aggregate) error {
	switch {
	case mine.Count <= uint64(min(s.p.maxListed(), s.room().listed)) && s.asks >= 1:
		return s.sendKeyList(ctx, lo, hi)
	case s.asks > 1:
		return s.splitFine(ctx, lo, hi, mine.Count)
	}
	s.handBack(lo, hi)
	return nil
}

// part is a range and how many of our keys it holds.
type part struct {
	lo, hi Key
	n      uint64
}

// maxFineParts bounds the parts of one closing split: a few tens of
// kilobytes of fingerprints, whatever the item limit.
const maxFineParts = 1024

// splitFine offers the fingerprints of parts of [lo, hi), as many as the
// reply allows (at most maxFineParts) and each as small as that allows:
// of at most maxListed keys whenever the range holds at most that many
// per part. It refines the tree's splits, so that the parts still line
// up with the peer's nodes, then joins neighbouring pieces into parts.
func (s *side) splitFine(ctx context.Context, lo, hi Key, n uint64) error {
	k := min(s.room().items, maxFineParts)
	if k < 2 {
		s.handBack(lo, hi)
		return nil
	}
	each := max((n+uint64(k)-1)/uint64(k), 1)
	grain := max(min(each, uint64(s.p.maxListed()))/4, 1)
	pieces, err := s.pieces(ctx, part{lo, hi, n}, grain, 4*k)
	if err != nil {
		return err
	}
	parts := balance(pieces, k, uint64(s.p.maxListed()))
	if len(parts) < 2 {
		return s.split(ctx, lo, hi)
	}
	bounds := make([]Key, 0, len(parts)-1)
	for _, p := range parts[1:] {
		bounds = append(bounds, p.lo)
	}
	return s.sendSplit(ctx, lo, hi, bounds)
}

// pieces cuts p along the tree until no piece holds more than grain
// keys, no piece splits further, or there are limit pieces. Each round
// cuts every piece above grain one level down; when a level has more
// parts than the piece's share of what is left of the limit (in
// proportion to its keys), they are joined into that many.
func (s *side) pieces(ctx context.Context, p part, grain uint64, limit int) ([]part, error) {
	out := []part{p}
	whole := make(map[Key]bool) // pieces, by lower bound, that do not split
	for round := 0; round < 4*maxLevel && len(out) < limit; round++ {
		var big uint64
		for _, q := range out {
			if q.n > grain && !whole[q.lo] {
				big += q.n
			}
		}
		if big == 0 {
			break
		}
		spare := float64(limit - len(out))
		next := make([]part, 0, limit)
		for _, q := range out {
			share := 1 + int(spare*float64(q.n)/float64(big))
			if q.n <= grain || whole[q.lo] || share < 2 {
				next = append(next, q)
				continue
			}
			sub, err := s.cut(ctx, q)
			if err != nil {
				return nil, err
			}
			if len(sub) > share {
				sub = balance(sub, share, grain)
			}
			if len(sub) < 2 {
				whole[q.lo] = true
				next = append(next, q)
				continue
			}
			next = append(next, sub...)
		}
		out = next
	}
	return out, nil
}

// cut returns the parts of p along the tree's splits, with their counts;
// a range within one leaf, which the tree does not split, is cut between
// every pair of keys (a leaf is small, so listing it costs little).
func (s *side) cut(ctx context.Context, p part) ([]part, error) {
	pieces, err := s.splitParts(ctx, p.lo, p.hi)
	if err != nil {
		return nil, err
	}
	if len(pieces) == 0 {
		keys, err := keysIn(ctx, s.set, p.lo, p.hi)
		if err != nil || len(keys) < 2 {
			return nil, err
		}
		out := make([]part, 0, len(keys))
		prev := p.lo
		for i := 1; i < len(keys); i++ {
			b := minimalBound(keys[i-1], keys[i])
			out = append(out, part{prev, b, 1})
			prev = b
		}
		return append(out, part{prev, p.hi, 1}), nil
	}
	return pieces, nil
}

// balance joins neighbouring pieces into parts: the fewest that each
// hold at most enough keys, if at most k do, and otherwise k parts whose
// largest is as small as it can be (the smallest cap for which filling
// parts greedily up to it needs at most k of them). A part with more
// than enough keys is then one piece that did not split further.
func balance(pieces []part, k int, enough uint64) []part {
	groups := func(limit uint64, keep bool) (int, []part) {
		var out []part
		count := 0
		var cur part
		for i, p := range pieces {
			if i > 0 && cur.n+p.n <= limit {
				cur.hi, cur.n = p.hi, cur.n+p.n
				continue
			}
			if i > 0 && keep {
				out = append(out, cur)
			}
			cur = p
			count++
		}
		if keep && len(pieces) > 0 {
			out = append(out, cur)
		}
		return count, out
	}
	if c, out := groups(enough, true); c <= k {
		return out
	}
	var lo, hi uint64 // the cap lies in (lo, hi]
	for _, p := range pieces {
		lo = max(lo, p.n)
		hi += p.n
	}
	lo-- // a cap of the largest piece may do
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if c, _ := groups(mid, false); c <= k {
			hi = mid
		} else {
			lo = mid
		}
	}
	_, out := groups(hi, true)
	return out
}

// gamble spends what the last message that may ask for a reply has left
// of its list budget on the ranges it hands back, which are too large to
// list: it lists their first keys. Unlike a whole list of a differing
// range, a prefix may hold no difference, so this runs after every such
// list has had its turn.
func (s *side) gamble(ctx context.Context) error {
	out := make([]rangeItem, 0, len(s.out.items))
	for _, it := range s.out.items {
		n := min(s.p.maxListed(), s.left.listed)
		if it.mode != pb.Mode_FINGERPRINT || n < 1 || s.left.items < 1 {
			out = append(out, it)
			continue
		}
		keys, err := firstKeys(ctx, s.set, it.lo, it.hi, n+1)
		if err != nil {
			return err
		}
		switch {
		case len(keys) == 0: // the peer answers with what we lack
			out = append(out, it)
		case len(keys) <= n:
			s.left.listed -= len(keys)
			out = append(out, rangeItem{lo: it.lo, hi: it.hi, mode: pb.Mode_KEYLIST, keys: keys})
		default:
			cut := minimalBound(keys[n-1], keys[n])
			rest, err := s.fingerprintItem(ctx, cut, it.hi, true)
			if err != nil {
				return err
			}
			s.left.items--
			s.left.listed -= n
			out = append(out, rangeItem{lo: it.lo, hi: cut, mode: pb.Mode_KEYLIST, keys: keys[:n]}, rest)
		}
	}
	s.out.items = out
	return nil
}
