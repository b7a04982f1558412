package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"

	ds "github.com/ipfs/go-datastore"
)

// Tree is a persistent prolly tree over the keys of one scope, stored in a
// go-datastore under a key prefix.
//
// Node boundaries depend only on the keys (see level), so the same set of
// keys gives the same nodes whatever the order of insertions and deletions
// that made it. Every internal entry carries its child's last key, count
// and sum, so the count and fingerprint of any key range come from
// O(log N) nodes.
//
// A Tree is safe for concurrent use. Reads hold a read lock for one node
// walk at a time, never across a whole range scan, so a long scan does not
// stall writers; a scan that overlaps a write may see part of it, which a
// reconciliation session treats as a spurious difference. Writes go
// through a Txn, one at a time.
type Tree struct {
	store *nodeStore
	d     ds.Datastore

	mu   sync.RWMutex
	root *node // nil when empty

	cells      *cellCache // sketch cells of subtrees (tree_cells.go)
	fixedCache bool       // the node cache's bound is the caller's

	// index maps short IDs to keys (WithKeyIndex); nil without it. It
	// changes with the root, under mu.
	index *keyIndex
}

// config holds the options of Open.
type config struct {
	cacheEntries int
	fixedCache   bool
	keyIndex     bool
}

// defaultCacheEntries is the least bound of the default node cache.
const defaultCacheEntries = 1 << 18

// Option configures Open.
type Option func(*config) error

// WithCacheEntries bounds the node cache to about n entries (a leaf entry
// is a key, an internal entry a child summary; about 100 bytes each).
// By default the bound is 1<<18 entries or a sixteenth of the tree's
// keys, whichever is more: room for every internal node of the tree
// (about a 31st of its keys) and as many leaf entries, so that a
// session's reads of a few leaves go through cached internal nodes at
// any size (about 6 bytes a key, at most, for a tree above 4 million
// keys).
func WithCacheEntries(n int) Option {
	return func(c *config) error {
		if n < 1024 {
			return fmt.Errorf("cache of %d entries is too small (min 1024)", n)
		}
		c.cacheEntries, c.fixedCache = n, true
		return nil
	}
}

// WithKeyIndex keeps every key of the tree in memory, by short ID, so
// that the keys of the short IDs a session decodes are found without the
// walk down the tree and the leaf read each otherwise costs
// (keysWithIDs). Sessions then take a third to a half of the time, and
// grow less with the tree (storesync-bench -mode growth, medians of
// rounds): 10 scattered differences took 0.08 to 0.21 ms at 1 million
// keys and 0.11 to 0.30 ms at 10 million, against 0.32 to 0.58 and 0.44
// to 0.88 ms without; 1,000 differences 7 to 27 and 7 to 14 ms, against
// 22 to 38 and 27 to 45 ms. The cost is memory, 40 bytes a key (400 MB
// at 10 million), and twice that while the index folds its changes in,
// which a write does once its changes pass an eighth of the index; and
// time: Open reads every key once, and writes index their keys (building
// two trees of 10 million keys in batches of 10,000 took 24 to 29 s
// rather than 11 to 15). A Builder collects its keys for the index that
// Commit loads. Default off.
func WithKeyIndex() Option {
	return func(c *config) error {
		c.keyIndex = true
		return nil
	}
}

// cacheGrowth is the share of the tree's keys the default node cache
// grows to (see WithCacheEntries).
const cacheGrowth = 16

// fitCache grows the default node cache with the tree.
func (t *Tree) fitCache() {
	if !t.fixedCache && t.root != nil {
		t.store.setBudget(max(defaultCacheEntries, int(min(t.root.agg.Count/cacheGrowth, 1<<30))))
	}
}

// metaFormat is the first byte of the meta record.
const metaFormat = 1

// Open opens the tree stored under prefix in d, or an empty one if there
// is none. Opening reads only the root.
func Open(ctx context.Context, d ds.Datastore, prefix ds.Key, opts ...Option) (*Tree, error) {
	cfg := config{cacheEntries: defaultCacheEntries}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	t := &Tree{store: newNodeStore(d, prefix, cfg.cacheEntries), d: d, cells: newCellCache(), fixedCache: cfg.fixedCache}
	if cfg.keyIndex {
		t.index = newKeyIndex()
	}
	b, err := d.Get(ctx, t.store.metaKey())
	switch {
	case errors.Is(err, ds.ErrNotFound):
		return t, nil
	case err != nil:
		return nil, fmt.Errorf("open tree: %w", err)
	}
	addr, empty, err := decodeMeta(b)
	if err != nil {
		return nil, err
	}
	if !empty {
		if t.root, err = t.store.get(ctx, addr); err != nil {
			return nil, fmt.Errorf("open tree: %w", err)
		}
	}
	t.fitCache()
	if t.index != nil {
		if err := t.fillKeyIndex(ctx); err != nil {
			return nil, fmt.Errorf("open tree: index its keys: %w", err)
		}
	}
	return t, nil
}

// encodeMeta records where the root is: format, flags (1 empty, 2 open),
// height, and the root's last key when it is closed.
func encodeMeta(root *node) []byte {
	if root == nil {
		return []byte{metaFormat, 1}
	}
	a := addrOf(root)
	b := []byte{metaFormat, 0, byte(root.height)}
	if a.open {
		b[1] = 2
		return b
	}
	return append(b, a.last.Bytes()...)
}

func decodeMeta(b []byte) (a nodeAddr, empty bool, err error) {
	bad := fmt.Errorf("%w: bad meta record", ErrCorrupt)
	if len(b) < 2 || b[0] != metaFormat {
		return a, false, bad
	}
	switch {
	case b[1] == 1 && len(b) == 2:
		return a, true, nil
	case b[1] == 2 && len(b) == 3:
		return nodeAddr{height: int(b[2]), open: true}, false, nil
	case b[1] == 0 && len(b) == 3+KeySize:
		k, _ := KeyFromBytes(b[3:])
		return nodeAddr{height: int(b[2]), last: k}, false, nil
	}
	return a, false, bad
}

// Root returns the aggregate of the whole tree: its count and sum. Its
// Fingerprint is the scope's root.
func (t *Tree) Root() Aggregate {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.root == nil {
		return Aggregate{}
	}
	return t.root.aggregate()
}

// Count returns the number of keys in the tree.
func (t *Tree) Count() uint64 { return t.Root().Count }

// Height returns the height of the root (0 for a single leaf), or -1 for
// an empty tree.
func (t *Tree) Height() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.root == nil {
		return -1
	}
	return t.root.height
}

// child returns the node an internal entry stands for.
func (t *Tree) child(ctx context.Context, parent *node, i int) (*node, error) {
	return t.store.get(ctx, childAddr(parent, i))
}
