package reconcile

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	ds "github.com/ipfs/go-datastore"
)

// ErrNotAscending is returned by Builder.Add for a key not above the key
// added before it.
var ErrNotAscending = errors.New("tree builder: keys not in ascending order")

// ErrNotEmpty is returned by Tree.Build, and by Builder.Commit, for a tree
// that holds keys.
var ErrNotEmpty = errors.New("tree builder: the tree is not empty")

// Builder builds the tree of an empty Tree from keys given in ascending
// order, in one pass and in memory bounded by the tree's height: each
// node is final once it closes, so a closed node is ready to be written
// as soon as its last key is added, and only the open right edge of each
// height is kept until Finish. The tree it builds is the one inserting
// the same keys would build (the tree is history independent), node for
// node and byte for byte; a bulk load of sorted keys costs a fraction of
// what a Txn costs for them.
//
// The usual sequence is
//
//	b, err := tree.Build()
//	for each key in order { err = b.Add(k); ... b.WriteClosed(ctx, w) now and then }
//	err = b.Finish(ctx, batch) // the open nodes and the root
//	if err == nil { err = batch.Commit(ctx) }
//	if err == nil { err = b.Commit() }
//
// A Builder does not lock the tree while keys are added: the caller
// keeps every other writer away from the tree until Commit, which takes
// the write lock and refuses a tree that is no longer empty. Readers see
// the empty tree until then. Nodes written before a build is abandoned
// lie unreferenced under the tree's prefix; deleting the prefix clears
// them.
type Builder struct {
	t      *Tree
	runs   [][]entry // per height: the entries of its open node
	formed []int     // per height: nodes closed so far
	// held holds, per height above 0, a closed node written only once
	// the height below has two nodes: until then the root may be lower
	// and the node never part of the tree.
	held   []*node
	closed []*node     // per height: the node that closed last
	ready  []builtNode // nodes not yet written
	size   int         // encoded bytes of ready
	last   Key
	count  uint64
	root   *node
	done   bool
	// indexed: the tree keeps a key index, which Commit loads with keys,
	// every key added.
	indexed bool
	keys    []Key
}

// builtNode is a closed node ready to be written.
type builtNode struct {
	key ds.Key
	val []byte
}

// Build starts a bulk build of t, which must be empty; see Builder.
func (t *Tree) Build() (*Builder, error) {
	t.mu.RLock()
	empty, indexed := t.root == nil, t.index != nil
	t.mu.RUnlock()
	if !empty {
		return nil, ErrNotEmpty
	}
	return &Builder{t: t, indexed: indexed}, nil
}

// Add adds k, which must be above every key added before it.
func (b *Builder) Add(k Key) error {
	if b.done {
		return errors.New("tree builder: Add after Finish")
	}
	if b.count > 0 && !b.last.Less(k) {
		return fmt.Errorf("%w: %v after %v", ErrNotAscending, k, b.last)
	}
	b.last = k
	b.count++
	b.push(0, leafEntry(k))
	if b.indexed {
		b.keys = append(b.keys, k)
	}
	return nil
}

// Last returns the last key added, if any.
func (b *Builder) Last() (Key, bool) { return b.last, b.count > 0 }

// Count returns how many keys were added.
func (b *Builder) Count() uint64 { return b.count }

// push appends e to the open node of height h, and closes that node if
// e closes it.
func (b *Builder) push(h int, e entry) {
	for len(b.runs) <= h {
		b.runs = append(b.runs, nil)
		b.formed = append(b.formed, 0)
		b.held = append(b.held, nil)
		b.closed = append(b.closed, nil)
	}
	b.runs[h] = append(b.runs[h], e)
	if !closes(e.key, h, len(b.runs[h])) {
		return
	}
	n := newNode(h, slices.Clone(b.runs[h]))
	b.runs[h] = b.runs[h][:0]
	b.formed[h]++
	b.closed[h] = n
	if h > 0 && b.formed[h-1] < 2 {
		b.held[h] = n
	} else {
		b.ready1(addrOf(n), n.encode())
	}
	if b.formed[h] == 2 {
		b.release(h + 1)
	}
	b.push(h+1, parentEntry(n))
}

// release makes the node held at height h ready to write: the height
// below has two nodes now, so the node is part of the tree.
func (b *Builder) release(h int) {
	if h >= len(b.held) || b.held[h] == nil {
		return
	}
	n := b.held[h]
	b.held[h] = nil
	b.ready1(addrOf(n), n.encode())
}

// ready1 makes the node stored as val at a ready to write.
func (b *Builder) ready1(a nodeAddr, val []byte) {
	b.ready = append(b.ready, builtNode{key: b.t.store.key(a), val: val})
	b.size += len(val)
}

// Buffered returns the encoded size of the closed nodes not yet written.
func (b *Builder) Buffered() int { return b.size }

// WriteClosed writes the closed nodes built so far into w and forgets
// them. Calling it now and then bounds a build's memory; a caller that
// never does writes every node at Finish.
func (b *Builder) WriteClosed(ctx context.Context, w ds.Write) error {
	return b.WriteClosedUpTo(ctx, w, math.MaxInt)
}

// WriteClosedUpTo is WriteClosed for the first closed nodes only, in the
// order they closed, until at least limit bytes are written: a caller
// whose datastore takes many small batches better than one large one
// writes a build's nodes in parts.
func (b *Builder) WriteClosedUpTo(ctx context.Context, w ds.Write, limit int) error {
	n, size := 0, 0
	for n < len(b.ready) && size < limit {
		if err := w.Put(ctx, b.ready[n].key, b.ready[n].val); err != nil {
			return fmt.Errorf("write tree node: %w", err)
		}
		size += len(b.ready[n].val)
		n++
	}
	rest := copy(b.ready, b.ready[n:])
	clear(b.ready[rest:])
	b.ready, b.size = b.ready[:rest], b.size-size
	return nil
}

// Finish ends the build: it writes the closed nodes not yet written, the
// open nodes of the right edge and the tree's meta record into w. Commit
// publishes the tree once w has committed. No key may be added after.
func (b *Builder) Finish(ctx context.Context, w ds.Write) error {
	if b.done {
		return errors.New("tree builder: Finish called twice")
	}
	b.done = true
	// Bottom up, each height's open node ends it; the root is the node
	// of the lowest height that has only one.
	for h := 0; b.count > 0 && b.root == nil; h++ {
		if len(b.runs[h]) == 0 {
			if b.formed[h] == 1 {
				b.root = b.closed[h]
			}
			continue
		}
		n := newNode(h, b.runs[h])
		b.runs[h] = nil
		b.formed[h]++
		a := addrOf(n)
		b.ready1(a, n.encodeStored(a))
		if b.formed[h] == 1 {
			b.root = n
			break
		}
		b.release(h + 1)
		b.push(h+1, parentEntry(n))
	}
	if err := b.WriteClosed(ctx, w); err != nil || b.root == nil {
		return err // an empty build writes nothing
	}
	if err := w.Put(ctx, b.t.store.metaKey(), encodeMeta(b.root)); err != nil {
		return fmt.Errorf("write tree meta: %w", err)
	}
	return nil
}

// Root returns the aggregate of the built tree; valid after Finish.
func (b *Builder) Root() Aggregate {
	if b.root == nil {
		return Aggregate{}
	}
	return b.root.aggregate()
}

// Commit publishes the built tree to readers once the batch given to
// Finish has committed. It fails, changing nothing, before Finish or
// when the tree is no longer empty: another writer broke the build's
// contract.
func (b *Builder) Commit() error {
	if !b.done {
		return errors.New("tree builder: Commit before Finish")
	}
	t := b.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.root != nil {
		return ErrNotEmpty
	}
	if b.root == nil {
		return nil
	}
	t.store.add(addrOf(b.root), b.root)
	t.root = b.root
	if t.index != nil {
		t.index.load(b.keys)
		b.keys = nil
	}
	t.cells.clear()
	t.fitCache()
	return nil
}
