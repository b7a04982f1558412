package reconcile

import (
	"container/list"
	"context"
	"slices"
	"sync"
	"unsafe"
)

// A range's sketch is the sum of the sketches of the subtrees that cover
// it and of the keys at its edges, because cells are linear (XOR of IDs
// and checksums, sum of counts). The tree keeps the first cachedCells
// cells of every subtree of height 1 or more in memory (a cell memo),
// computed the first time a sketch needs them and checked against the
// subtree's aggregate in its parent's entry, so that a memo of a subtree
// that changed is never used. A range's first cachedCells cells then cost
// O(fanout · log N) memo additions plus the keys of the partial leaves at
// its two edges, not a read of the range: about 2 bytes of memory per
// key (one memo of 2 KiB per about 1,000 keys).

// cachedCells is how many cells of each subtree's sketch a memo holds: a
// sketch of that length decodes a difference of about 75 elements.
const cachedCells = 128

// cellMemo is the first cachedCells cells of one subtree's sketch.
type cellMemo struct {
	addr  nodeAddr
	agg   Aggregate // the subtree's, when the cells were computed
	cells []cell
}

// cellCache holds the memos of one tree, least recently used first out,
// within a budget that grows with the tree: twice the memos its subtrees
// of height 1 need, so that memos of replaced subtrees age out.
type cellCache struct {
	mu    sync.Mutex
	items map[nodeAddr]*list.Element
	lru   list.List
}

func newCellCache() *cellCache { return &cellCache{items: make(map[nodeAddr]*list.Element)} }

// get returns the memo of the subtree at a if it holds the aggregate agg.
func (c *cellCache) get(a nodeAddr, agg Aggregate) []cell {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[a]
	if !ok {
		return nil
	}
	m := el.Value.(*cellMemo)
	if m.agg != agg {
		return nil
	}
	c.lru.MoveToFront(el)
	return m.cells
}

// put stores a memo, keeping at most budget.
func (c *cellCache) put(m *cellMemo, budget int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[m.addr]; ok {
		el.Value = m
		c.lru.MoveToFront(el)
	} else {
		c.items[m.addr] = c.lru.PushFront(m)
	}
	for c.lru.Len() > budget {
		el := c.lru.Back()
		c.lru.Remove(el)
		delete(c.items, el.Value.(*cellMemo).addr)
	}
}

// memoBudget is how many memos the cache of a tree of count keys keeps.
func memoBudget(count uint64) int { return int(max(1024, min(count/512, 1<<24))) }

// rangeCells returns cells [first, first+n) of the sketch of the keys in
// [lo, hi).
func (t *Tree) rangeCells(ctx context.Context, lo, hi Key, first, n uint64) ([]cell, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]cell, n)
	if t.root == nil || !lo.Less(hi) {
		return out, nil
	}
	budget := memoBudget(t.root.agg.Count)
	return out, t.addCells(ctx, t.root, Key{}, lo, hi, first, out, 1, budget)
}

// addCells adds into out, with the given sign, the cells from first of
// the keys in [lo, hi) below n, whose keys are all above lower (the zero
// key: no limit). A child whose keys all lie in the range counts whole,
// from its memo; so does one cut by the range's lower end alone, less the
// part below it, which is how a range cut just above a node's last
// timestamp (Splits) reads no leaf. The leaves it reads are not cached:
// a memo's first fill reads every leaf below it once.
func (t *Tree) addCells(ctx context.Context, n *node, lower, lo, hi Key, first uint64, out []cell, sign int32, budget int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n.height == 0 {
		for i := n.search(lo, false); i < len(n.entries) && n.entries[i].key.Less(hi); i++ {
			addRange(out, first, keyID(&n.entries[i].key), sign)
		}
		return nil
	}
	memo := n.height >= 2 && first+uint64(len(out)) <= cachedCells
	return n.overlapping(lower, lo, hi, func(i int, prev Key) error {
		if !memo || !n.entries[i].key.Less(hi) {
			c, err := t.store.scan(ctx, childAddr(n, i))
			if err != nil {
				return err
			}
			return t.addCells(ctx, c, prev, lo, hi, first, out, sign, budget)
		}
		cells, err := t.subtreeCells(ctx, n, i, prev, budget)
		if err != nil {
			return err
		}
		for j := range out {
			c := &cells[first+uint64(j)]
			out[j].toggle(c.id, c.check, c.count*sign)
		}
		if !prev.Less(lo) {
			return nil
		}
		c, err := t.store.scan(ctx, childAddr(n, i))
		if err != nil {
			return err
		}
		return t.addCells(ctx, c, prev, Key{}, lo, first, out, -sign, budget)
	})
}

// subtreeCells returns the memo of the child at parent's entry i, whose
// keys are above lower, computing it if it is missing or stale.
func (t *Tree) subtreeCells(ctx context.Context, parent *node, i int, lower Key, budget int) ([]cell, error) {
	a, agg := childAddr(parent, i), parent.entries[i].agg
	if cells := t.cells.get(a, agg); cells != nil {
		return cells, nil
	}
	c, err := t.store.scan(ctx, a)
	if err != nil {
		return nil, err
	}
	cells := make([]cell, cachedCells)
	if err := t.addCells(ctx, c, lower, Key{}, End, 0, cells, 1, budget); err != nil {
		return nil, err
	}
	t.cells.put(&cellMemo{addr: a, agg: agg, cells: cells}, budget)
	return cells, nil
}

// keyChange is a key a Txn added (sign 1) or removed (sign -1).
type keyChange struct {
	k    Key
	sign int32
}

// updateMemos carries a committed Txn's changes into the memos of the
// subtrees they fall in, so that a write costs the memos it touches a few
// cell toggles per key and level instead of a new read of each subtree.
// A memo whose subtree changed otherwise (its bounds moved) no longer
// matches the subtree's aggregate and is computed again when needed. It
// runs under the tree's write lock, over nodes the Txn has just cached.
func (t *Tree) updateMemos(ctx context.Context, added, removed []Key) {
	if t.root == nil || t.root.height < 2 || t.cells.empty() || len(added)+len(removed) == 0 {
		return
	}
	changes := make([]keyChange, 0, len(added)+len(removed))
	for _, k := range added {
		changes = append(changes, keyChange{k: k, sign: 1})
	}
	for _, k := range removed {
		changes = append(changes, keyChange{k: k, sign: -1})
	}
	slices.SortFunc(changes, func(a, b keyChange) int { return a.k.Compare(b.k) })
	if err := t.updateMemosBelow(ctx, t.root, changes); err != nil {
		t.cells.clear()
	}
}

// updateMemosBelow updates the memos of n's children (n is of height 2
// or more) with the sorted changes below n.
func (t *Tree) updateMemosBelow(ctx context.Context, n *node, changes []keyChange) error {
	j := 0
	for i := 0; i < len(n.entries) && j < len(changes); i++ {
		e := &n.entries[i]
		k := j
		for k < len(changes) && !e.key.Less(changes[k].k) {
			k++
		}
		if k == j {
			continue
		}
		part := changes[j:k]
		j = k
		t.cells.apply(childAddr(n, i), e.agg, part)
		if n.height > 2 {
			c, err := t.store.scan(ctx, childAddr(n, i))
			if err != nil {
				return err
			}
			if err := t.updateMemosBelow(ctx, c, part); err != nil {
				return err
			}
		}
	}
	return nil
}

// empty reports whether the cache holds no memo.
func (c *cellCache) empty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items) == 0
}

// clear drops every memo.
func (c *cellCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.items)
	c.lru.Init()
}

// apply adds changes to the memo at a, if it has one and the changes
// take it to the subtree's aggregate agg; a memo they do not is dropped.
func (c *cellCache) apply(a nodeAddr, agg Aggregate, changes []keyChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[a]
	if !ok {
		return
	}
	m := el.Value.(*cellMemo)
	want := m.agg
	for i := range changes {
		if changes[i].sign > 0 {
			want = want.AddHash(&changes[i].k.Hash)
		} else {
			want = want.SubHash(&changes[i].k.Hash)
		}
	}
	if want != agg {
		c.lru.Remove(el)
		delete(c.items, a)
		return
	}
	for i := range changes {
		addRange(m.cells, 0, keyID(&changes[i].k), changes[i].sign)
	}
	m.agg = agg
}

// CacheStats is what a tree keeps in memory beyond its root.
type CacheStats struct {
	NodeEntries int   // entries of the nodes in the node cache
	CellMemos   int   // subtrees whose sketch cells are kept
	CellBytes   int64 // the memory those cells take
	IndexKeys   int   // keys in the key index (WithKeyIndex)
	IndexBytes  int64 // about the memory the key index takes
}

// memoBytes is the memory of one memo: its cells and its bookkeeping.
const memoBytes = cachedCells*int64(unsafe.Sizeof(cell{})) + 160

// CacheStats returns what the tree keeps in memory.
func (t *Tree) CacheStats() CacheStats {
	t.store.mu.Lock()
	entries := t.store.size
	t.store.mu.Unlock()
	t.cells.mu.Lock()
	memos := len(t.cells.items)
	t.cells.mu.Unlock()
	st := CacheStats{NodeEntries: entries, CellMemos: memos, CellBytes: int64(memos) * memoBytes}
	t.mu.RLock()
	if t.index != nil {
		st.IndexKeys, st.IndexBytes = t.index.n, int64(t.index.n)*keyIndexBytes
	}
	t.mu.RUnlock()
	return st
}

// WarmSketches computes the memos of every subtree, reading the whole
// tree once, so that the first session that needs a sketch of a large
// range costs no more than later ones. It takes the tree's read lock for
// one top-level part at a time, so writes go on meanwhile, and stops at
// ctx's end.
func (t *Tree) WarmSketches(ctx context.Context) error {
	bounds, err := t.Splits(ctx, Key{}, End)
	if err != nil {
		return err
	}
	for _, r := range cutRange(Key{}, End, bounds) {
		if _, err := t.rangeCells(ctx, r.Lo, r.Hi, 0, 1); err != nil {
			return err
		}
	}
	return nil
}
