package reconcile

import (
	"context"
	"slices"
)

// Set is the read side of an ordered set of keys: what reconciliation
// needs of a scope's store. *Tree implements it; so does SliceSet, the
// in-memory model used by tests.
type Set interface {
	// Aggregate returns the count and sum of the keys in [lo, hi).
	Aggregate(ctx context.Context, lo, hi Key) (Aggregate, error)
	// Iterate calls fn for each key in [lo, hi) in ascending order.
	Iterate(ctx context.Context, lo, hi Key, fn func(Key) error) error
	// Last returns the largest key in [lo, hi).
	Last(ctx context.Context, lo, hi Key) (Key, bool, error)
	// Splits returns ascending bounds strictly inside (lo, hi) that cut
	// the range into parts a peer with a similar set can compare
	// cheaply, or nil when the range is too small to split.
	Splits(ctx context.Context, lo, hi Key) ([]Key, error)
}

var (
	_ Set = (*Tree)(nil)
	_ Set = SliceSet(nil)
)

// SliceSet is a Set over a sorted slice of distinct keys; it is the model
// the tree is tested against and serves small in-memory sets.
type SliceSet []Key

// NewSliceSet sorts and deduplicates keys into a SliceSet.
func NewSliceSet(keys []Key) SliceSet {
	s := slices.Clone(keys)
	slices.SortFunc(s, func(a, b Key) int { return a.Compare(b) })
	return slices.Compact(s)
}

func (s SliceSet) span(lo, hi Key) []Key {
	cmp := func(a, b Key) int { return a.Compare(b) }
	i, _ := slices.BinarySearchFunc(s, lo, cmp)
	j, _ := slices.BinarySearchFunc(s, hi, cmp)
	if j < i {
		return nil
	}
	return s[i:j]
}

// Aggregate implements Set.
func (s SliceSet) Aggregate(_ context.Context, lo, hi Key) (Aggregate, error) {
	var a Aggregate
	for _, k := range s.span(lo, hi) {
		a = a.AddHash(&k.Hash)
	}
	return a, nil
}

// Iterate implements Set.
func (s SliceSet) Iterate(_ context.Context, lo, hi Key, fn func(Key) error) error {
	for _, k := range s.span(lo, hi) {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// Last implements Set.
func (s SliceSet) Last(_ context.Context, lo, hi Key) (Key, bool, error) {
	sp := s.span(lo, hi)
	if len(sp) == 0 {
		return Key{}, false, nil
	}
	return sp[len(sp)-1], true, nil
}

// Splits implements Set with 16 parts of equal count, cut between
// timestamps.
func (s SliceSet) Splits(_ context.Context, lo, hi Key) ([]Key, error) {
	sp := s.span(lo, hi)
	if len(sp) < 32 {
		return nil, nil
	}
	var out []Key
	for i := 1; i < 16; i++ {
		b := TimeBound(sp[i*len(sp)/16].TS)
		if lo.Less(b) && b.Less(hi) && (len(out) == 0 || out[len(out)-1].Less(b)) {
			out = append(out, b)
		}
	}
	return out, nil
}

// keysIn returns the keys of [lo, hi); callers bound the range first.
func keysIn(ctx context.Context, s Set, lo, hi Key) ([]Key, error) {
	var out []Key
	err := s.Iterate(ctx, lo, hi, func(k Key) error {
		out = append(out, k)
		return nil
	})
	return out, err
}

// firstKeys returns the first n keys of [lo, hi), or all if fewer.
func firstKeys(ctx context.Context, s Set, lo, hi Key, n int) ([]Key, error) {
	var out []Key
	err := s.Iterate(ctx, lo, hi, func(k Key) error {
		if len(out) == n {
			return errStop
		}
		out = append(out, k)
		return nil
	})
	if err == errStop {
		err = nil
	}
	return out, err
}

func maxKey(a, b Key) Key {
	if a.Less(b) {
		return b
	}
	return a
}

func minKey(a, b Key) Key {
	if a.Less(b) {
		return a
	}
	return b
}

// cutRange returns the pieces [lo, hi) is cut into at bounds, which are
// ascending and strictly inside it.
func cutRange(lo, hi Key, bounds []Key) []Range {
	out := make([]Range, 0, len(bounds)+1)
	for _, b := range bounds {
		out = append(out, Range{Lo: lo, Hi: b})
		lo = b
	}
	return append(out, Range{Lo: lo, Hi: hi})
}

// errStop ends an iteration early; it never leaves this package.
var errStop = errStopType{}

type errStopType struct{}

func (errStopType) Error() string { return "stop" }
