package reconcile

import (
	"context"
	"fmt"
)

// Verify walks the whole tree and checks every invariant the tree relies
// on: keys sorted within and across nodes, every node closed exactly at
// its boundary keys or the size bound, every parent entry equal to its child's last key and
// aggregate, and a root that is not a single-child internal node. It
// returns the root's aggregate, which a store can compare with its own
// count and sum to prove at start-up that tree and messages agree. It
// reads every node: O(N).
func (t *Tree) Verify(ctx context.Context) (Aggregate, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.root == nil {
		return Aggregate{}, nil
	}
	if t.root.height > 0 && len(t.root.entries) == 1 {
		return Aggregate{}, fmt.Errorf("%w: root has a single child", ErrCorrupt)
	}
	v := verifier{t: t}
	return v.walk(ctx, t.root, true)
}

type verifier struct {
	t    *Tree
	prev Key // last key seen at height 0
	any  bool
}

// walk checks n, whose parent says it is the rightmost node of its height
// when rightmost is set.
func (v *verifier) walk(ctx context.Context, n *node, rightmost bool) (Aggregate, error) {
	if len(n.entries) == 0 {
		return Aggregate{}, fmt.Errorf("%w: empty node", ErrCorrupt)
	}
	if len(n.entries) > maxNodeEntries {
		return Aggregate{}, fmt.Errorf("%w: node at height %d holds %d entries", ErrCorrupt, n.height, len(n.entries))
	}
	for i, e := range n.entries {
		if i < len(n.entries)-1 && isBoundary(e.key, n.height) {
			return Aggregate{}, fmt.Errorf("%w: boundary key %v inside a node at height %d", ErrCorrupt, e.key, n.height)
		}
	}
	if !n.closed() && !rightmost {
		return Aggregate{}, fmt.Errorf("%w: node at height %d not closed by a boundary or the size bound", ErrCorrupt, n.height)
	}
	var total Aggregate
	for i, e := range n.entries {
		if err := ctx.Err(); err != nil {
			return Aggregate{}, err
		}
		if n.height == 0 {
			if v.any && !v.prev.Less(e.key) {
				return Aggregate{}, fmt.Errorf("%w: keys out of order at %v", ErrCorrupt, e.key)
			}
			if e.key.TS == 0 || e.key.TS > MaxTimestamp {
				return Aggregate{}, fmt.Errorf("%w: key %v out of the valid range", ErrCorrupt, e.key)
			}
			v.prev, v.any = e.key, true
			total = total.Add(e.agg)
			continue
		}
		c, err := v.t.child(ctx, n, i)
		if err != nil {
			return Aggregate{}, err
		}
		if c.height != n.height-1 || c.last() != e.key || c.forcedClosed() != e.forced {
			return Aggregate{}, fmt.Errorf("%w: child of entry %v does not match it", ErrCorrupt, e.key)
		}
		ca, err := v.walk(ctx, c, rightmost && i == len(n.entries)-1)
		if err != nil {
			return Aggregate{}, err
		}
		if ca != e.agg {
			return Aggregate{}, fmt.Errorf("%w: aggregate of %v differs from its child's", ErrCorrupt, e.key)
		}
		total = total.Add(ca)
	}
	return total, nil
}
