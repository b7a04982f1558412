package reconcile

import (
	"context"
)

// Aggregate returns the count and sum of the keys in [lo, hi). It reads
// the nodes along the two edges of the range and takes every node in
// between from its parent's entry, so it costs O(log N) node reads.
func (t *Tree) Aggregate(ctx context.Context, lo, hi Key) (Aggregate, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.root == nil || !lo.Less(hi) {
		return Aggregate{}, nil
	}
	return t.aggregate(ctx, t.root, Key{}, lo, hi)
}

// aggregate sums the keys in [lo, hi) below n, whose keys are all above
// lower (the zero key stands for no lower limit: no stored key is zero).
func (t *Tree) aggregate(ctx context.Context, n *node, lower, lo, hi Key) (Aggregate, error) {
	var a Aggregate
	if n.height == 0 {
		for i := n.search(lo, false); i < len(n.entries) && n.entries[i].key.Less(hi); i++ {
			a = a.Add(n.entries[i].agg)
		}
		return a, nil
	}
	err := n.overlapping(lower, lo, hi, func(i int, prev Key) error {
		e := &n.entries[i]
		if !prev.Less(lo) && e.key.Less(hi) {
			a = a.Add(e.agg)
			return nil
		}
		c, err := t.child(ctx, n, i)
		if err != nil {
			return err
		}
		ca, err := t.aggregate(ctx, c, prev, lo, hi)
		a = a.Add(ca)
		return err
	})
	return a, err
}

// overlapping calls fn, in order, for each child of n (of height 1 or
// more, whose keys are all above lower) that may hold keys in [lo, hi),
// with the key its keys are above: child i holds keys in (prev,
// entries[i].key]. It stops at fn's first error.
func (n *node) overlapping(lower, lo, hi Key, fn func(i int, prev Key) error) error {
	prev := lower
	for i := n.search(lo, false); i < len(n.entries); i++ {
		if i > 0 {
			prev = n.entries[i-1].key
		}
		if !prev.Less(hi) {
			break
		}
		if err := fn(i, prev); err != nil {
			return err
		}
	}
	return nil
}

// Iterate calls fn for every key in [lo, hi) in ascending order, stopping
// at the first error fn returns. It holds the tree's read lock for one
// leaf at a time, so writes may land between leaves.
func (t *Tree) Iterate(ctx context.Context, lo, hi Key, fn func(Key) error) error {
	after, strict := lo, false
	var buf []Key
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var more bool
		var err error
		buf, more, err = t.leafKeys(ctx, after, strict, hi, buf[:0])
		if err != nil {
			return err
		}
		for _, k := range buf {
			if err := fn(k); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		after, strict = buf[len(buf)-1], true
	}
}

// leafKeys appends the keys of the leaf holding the first key after
// `after` (or at it, unless strict) that are below hi, and reports whether
// a later leaf may hold more.
func (t *Tree) leafKeys(ctx context.Context, after Key, strict bool, hi Key, buf []Key) ([]Key, bool, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := t.root
	if n == nil {
		return buf, false, nil
	}
	for n.height > 0 {
		i := n.search(after, strict)
		if i == len(n.entries) {
			return buf, false, nil
		}
		c, err := t.child(ctx, n, i)
		if err != nil {
			return buf, false, err
		}
		n = c
	}
	i := n.search(after, strict)
	for ; i < len(n.entries); i++ {
		if !n.entries[i].key.Less(hi) {
			return buf, false, nil
		}
		buf = append(buf, n.entries[i].key)
	}
	return buf, len(buf) > 0, nil
}

// Last returns the largest key in [lo, hi), if any.
func (t *Tree) Last(ctx context.Context, lo, hi Key) (Key, bool, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.root == nil || !lo.Less(hi) {
		return Key{}, false, nil
	}
	return t.last(ctx, t.root, lo, hi)
}

func (t *Tree) last(ctx context.Context, n *node, lo, hi Key) (Key, bool, error) {
	i := n.search(hi, false) // entries before i are below hi
	if n.height == 0 {
		if i > 0 && !n.entries[i-1].key.Less(lo) {
			return n.entries[i-1].key, true, nil
		}
		return Key{}, false, nil
	}
	if i < len(n.entries) {
		// The child at i ends at or above hi but may hold keys below it.
		c, err := t.child(ctx, n, i)
		if err != nil {
			return Key{}, false, err
		}
		k, ok, err := t.last(ctx, c, lo, hi)
		if ok || err != nil {
			return k, ok, err
		}
	}
	// Every child before i ends below hi, at its own last key.
	if i > 0 && !n.entries[i-1].key.Less(lo) {
		return n.entries[i-1].key, true, nil
	}
	return Key{}, false, nil
}

// Splits returns bounds that cut [lo, hi) along the tree's node
// boundaries, from the highest level at which the range holds a boundary:
// the children of the smallest subtree that covers the range. A bound sits
// just above a node's last timestamp, so ranges are cut between
// timestamps and encode in a few bytes. It returns nil when the range lies
// within one leaf.
func (t *Tree) Splits(ctx context.Context, lo, hi Key) ([]Key, error) {
	bounds, _, err := t.splits(ctx, lo, hi, false)
	return bounds, err
}

// splitCounts returns the bounds Splits returns and, for each of the
// len(bounds)+1 parts they cut [lo, hi) into, about how many keys it
// holds, without reading below the node it cuts: a part that is one
// child takes the child's count from its parent's entry, which differs
// from the part's only by keys that share a timestamp with a neighbour
// across the bound. An edge part that cuts into its child is counted
// exactly. The counts size sketches and parts; they are never compared
// with a peer's.
func (t *Tree) splitCounts(ctx context.Context, lo, hi Key) ([]Key, []uint64, error) {
	return t.splits(ctx, lo, hi, true)
}

// splits is Splits, and with counted splitCounts: one walk down to the
// node that cuts [lo, hi), summing its entries' counts into the parts.
func (t *Tree) splits(ctx context.Context, lo, hi Key, counted bool) ([]Key, []uint64, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n, lower := t.root, Key{}
	if n == nil || !lo.Less(hi) {
		return nil, nil, nil
	}
	for n.height > 0 {
		i := n.search(lo, false)
		if i == len(n.entries) {
			return nil, nil, nil
		}
		prev := lower
		if i > 0 {
			prev = n.entries[i-1].key
		}
		var bounds []Key
		counts := []uint64{0}
		last := i // the child the last part falls in
		for j := i; j < len(n.entries); j++ {
			last = j
			b := TimeBound(n.entries[j].key.TS + 1)
			if len(bounds) > 0 && bounds[len(bounds)-1] == b {
				// A child within one timestamp lies below the bound
				// already taken.
				counts[len(counts)-2] += n.entries[j].agg.Count
				continue
			}
			counts[len(counts)-1] += n.entries[j].agg.Count
			if !b.Less(hi) {
				break
			}
			bounds = append(bounds, b)
			counts = append(counts, 0)
		}
		if len(bounds) == 0 {
			c, err := t.child(ctx, n, i)
			if err != nil {
				return nil, nil, err
			}
			n, lower = c, prev
			continue
		}
		if !counted {
			return bounds, nil, nil
		}
		if TimeBound(prev.TS + 1).Less(lo) {
			a, err := t.aggregate(ctx, t.root, Key{}, lo, bounds[0])
			if err != nil {
				return nil, nil, err
			}
			counts[0] = a.Count
		}
		if hi.Less(TimeBound(n.entries[last].key.TS + 1)) {
			a, err := t.aggregate(ctx, t.root, Key{}, bounds[len(bounds)-1], hi)
			if err != nil {
				return nil, nil, err
			}
			counts[len(counts)-1] = a.Count
		}
		return bounds, counts, nil
	}
	return nil, nil, nil
}

// Has reports whether k is in the tree: one walk from the root, through
// cached nodes for keys at the right edge, where new messages land.
func (t *Tree) Has(ctx context.Context, k Key) (bool, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := t.root
	for n != nil && n.height > 0 {
		i := n.search(k, false)
		if i == len(n.entries) {
			return false, nil
		}
		c, err := t.child(ctx, n, i)
		if err != nil {
			return false, err
		}
		n = c
	}
	if n == nil {
		return false, nil
	}
	i := n.search(k, false)
	return i < len(n.entries) && n.entries[i].key == k, nil
}
