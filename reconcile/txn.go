package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	ds "github.com/ipfs/go-datastore"
)

// Txn stages inserts and deletes and writes the resulting node changes
// into a datastore batch of the caller's, so that a message and its tree
// entries commit together.
//
// Begin takes the tree's write lock and Commit or Discard releases it, so
// a Txn must end with exactly one of them. The usual sequence is
//
//	x := tree.Begin()
//	x.Insert(k)
//	err := x.Write(ctx, batch) // the caller's batch, with its own puts
//	if err == nil { err = batch.Commit(ctx) }
//	if err != nil { x.Discard() } else { x.Commit() }
//
// Readers wait while a Txn is open, so the window between Write and the
// batch's commit never shows them a half-written tree.
type Txn struct {
	t   *Tree
	ops []op // in call order; the last call for a key wins

	written bool
	root    *node
	puts    map[nodeAddr]*node
	dels    map[nodeAddr]struct{}
	added   []Key // new keys, in key order
	removed []Key // deleted keys that were present, in key order
	ended   bool
}

// Begin starts a transaction; see Txn.
func (t *Tree) Begin() *Txn {
	t.mu.Lock()
	return &Txn{t: t}
}

// Insert stages the insertion of k; inserting a key already present
// changes nothing.
func (x *Txn) Insert(k Key) { x.ops = append(x.ops, op{k: k, insert: true}) }

// Grow makes room for n more staged inserts or deletes, for a caller
// that knows how many it will stage.
func (x *Txn) Grow(n int) {
	if n > 0 {
		x.ops = slices.Grow(x.ops, n)
	}
}

// Delete stages the deletion of k; deleting an absent key changes nothing.
func (x *Txn) Delete(k Key) { x.ops = append(x.ops, op{k: k}) }

// op is a staged insert or delete.
type op struct {
	k      Key
	insert bool
}

// Added returns how many staged inserts were new keys; valid after Write.
func (x *Txn) Added() int { return len(x.added) }

// Removed returns how many staged deletes hit a key; valid after Write.
func (x *Txn) Removed() int { return len(x.removed) }

// AddedKeys returns the staged inserts that were new keys, in key order:
// the tree is the store's duplicate check, so a caller writes the records
// of exactly these keys. Valid after Write; the slice is the Txn's.
func (x *Txn) AddedKeys() []Key { return x.added }

// RemovedKeys returns the staged deletes that hit a key, in key order.
// Valid after Write; the slice is the Txn's.
func (x *Txn) RemovedKeys() []Key { return x.removed }

// Root returns the aggregate of the tree as the Txn leaves it: what Root
// of the Tree returns once the Txn commits. Valid after Write.
func (x *Txn) Root() Aggregate {
	if x.root == nil {
		return Aggregate{}
	}
	return x.root.aggregate()
}

// Last returns the largest key of the tree as the Txn leaves it, if any.
// Valid after Write.
func (x *Txn) Last() (Key, bool) {
	if x.root == nil {
		return Key{}, false
	}
	return x.root.last(), true
}

// storedAs reports whether the old tree stores b at the open address a.
// The old tree's open node of a height, if it has one, is its rightmost
// node there, which the cached right spine leads to without a read.
func (x *Txn) storedAs(ctx context.Context, a nodeAddr, b []byte) (bool, error) {
	if x.t.root == nil || a.height > x.t.root.height {
		return false, nil
	}
	old, err := x.t.locate(ctx, a.height, End, false)
	if err != nil || addrOf(old) != a {
		return false, err
	}
	return bytes.Equal(old.encodeStored(a), b), nil
}

// edit is a change to the sequence of entries at one height: an upsert of
// e, or the deletion of the entry with key.
type edit struct {
	key Key
	del bool
	e   entry
}

// Write computes the new nodes and records the puts and deletes in w. It
// may be called once.
func (x *Txn) Write(ctx context.Context, w ds.Write) error {
	if x.written || x.ended {
		return errors.New("tree txn: Write called twice or after the end")
	}
	x.written = true
	x.puts = make(map[nodeAddr]*node)
	x.dels = make(map[nodeAddr]struct{})
	x.root = x.t.root
	if len(x.ops) == 0 {
		return nil
	}
	// Sorted by key, the calls for one key in call order: the last of
	// each run is the one that stands.
	slices.SortStableFunc(x.ops, func(a, b op) int { return a.k.Compare(b.k) })
	edits := make([]edit, 0, len(x.ops))
	for i, o := range x.ops {
		if i+1 < len(x.ops) && x.ops[i+1].k == o.k {
			continue
		}
		if o.insert {
			edits = append(edits, edit{key: o.k, e: leafEntry(o.k)})
		} else {
			edits = append(edits, edit{key: o.k, del: true})
		}
	}

	if err := x.rebuild(ctx, edits); err != nil {
		return err
	}
	if x.root == x.t.root {
		return nil
	}
	for a, n := range x.puts {
		b := n.encodeStored(a)
		if a.open && a.height > 0 {
			// An open node stored without its last entry is often stored
			// as it was: only the open node below it changed.
			same, err := x.storedAs(ctx, a, b)
			if err != nil {
				return err
			}
			if same {
				continue
			}
		}
		if err := w.Put(ctx, x.t.store.key(a), b); err != nil {
			return fmt.Errorf("write tree node: %w", err)
		}
	}
	for a := range x.dels {
		if _, ok := x.puts[a]; ok {
			continue
		}
		if err := w.Delete(ctx, x.t.store.key(a)); err != nil {
			return fmt.Errorf("delete tree node: %w", err)
		}
	}
	if meta := encodeMeta(x.root); x.t.root == nil || !bytes.Equal(meta, encodeMeta(x.t.root)) {
		if err := w.Put(ctx, x.t.store.metaKey(), meta); err != nil {
			return fmt.Errorf("write tree meta: %w", err)
		}
	}
	return nil
}

// rebuild applies edits bottom-up. At each height it loads the nodes the
// edits fall in (joined with their successor wherever a closing key is
// deleted), re-chunks their entries by the boundary rule and turns the
// replaced and new nodes into edits of the height above. Heights above
// the one being rebuilt are still the old tree, which is what locating a
// node needs.
func (x *Txn) rebuild(ctx context.Context, edits []edit) error {
	oldHeight := -1
	if x.t.root != nil {
		oldHeight = x.t.root.height
	}
	for h := 0; len(edits) > 0; h++ {
		var up []edit
		var chunks int
		var last *node
		if h > oldHeight {
			// Above the old root: only new entries, chunked from scratch.
			var elems []entry
			for _, e := range edits {
				if !e.del {
					elems = append(elems, e.e)
				}
			}
			if h == 0 {
				for _, e := range elems {
					x.added = append(x.added, e.key)
				}
			}
			for _, c := range chunk(elems, h) {
				x.puts[addrOf(c)] = c
				up = append(up, edit{key: c.last(), e: parentEntry(c)})
				chunks++
				last = c
			}
		} else {
			runs, err := x.runs(ctx, h, edits)
			if err != nil {
				return err
			}
			for ri := 0; ri < len(runs); ri++ {
				r := &runs[ri]
				elems, changed := x.apply(*r, h)
				if !changed {
					continue
				}
				cs, merged, err := x.rechunk(ctx, h, runs[ri:], elems)
				if err != nil {
					return err
				}
				ri += merged
				for _, n := range r.nodes {
					x.dels[addrOf(n)] = struct{}{}
					up = append(up, edit{key: n.last(), del: true})
				}
				for _, c := range cs {
					x.puts[addrOf(c)] = c
					up = append(up, edit{key: c.last(), e: parentEntry(c)})
					chunks++
					last = c
				}
			}
			if len(up) == 0 {
				return nil // nothing changed at all
			}
		}
		if h >= oldHeight {
			// The old root's height, or above it: one node left means
			// it is the root.
			switch chunks {
			case 0:
				x.root = nil
				return nil
			case 1:
				x.root = last
				return x.shrink(ctx)
			}
			// Several nodes: the level above holds only their entries.
			up = slices.DeleteFunc(up, func(e edit) bool { return e.del })
		}
		edits = normalize(up)
	}
	return nil
}

// rechunk cuts the entries of the run runs[0], edited into elems, into
// nodes of height h. Where the size bound closed a node, an insert or a
// delete shifts every later close of the same run of keys without a
// boundary, so while the last node does not close (and the run is not at
// the right edge, where the open node may end anything) the nodes after
// the run join it: the following runs of runs, whose edits apply with
// them (merged counts how many), or nodes no edit touched. It stops at the
// first close, where the chunking meets the old tree's again. The joined
// nodes are added to runs[0].nodes.
func (x *Txn) rechunk(ctx context.Context, h int, runs []run, elems []entry) (cs []*node, merged int, err error) {
	r := &runs[0]
	for {
		cs = chunk(elems, h)
		end := r.nodes[len(r.nodes)-1]
		if len(cs) == 0 || cs[len(cs)-1].closed() || x.isRightmost(end) {
			return cs, merged, nil
		}
		s, err := x.t.locate(ctx, h, end.last(), true)
		if err != nil {
			return nil, 0, err
		}
		if s == nil {
			return cs, merged, nil
		}
		if next := 1 + merged; next < len(runs) && runs[next].nodes[0].last() == s.last() {
			more, _ := x.apply(runs[next], h)
			elems = append(elems, more...)
			r.nodes = append(r.nodes, runs[next].nodes...)
			merged++
			continue
		}
		elems = append(elems, s.entries...)
		r.nodes = append(r.nodes, s)
	}
}

// shrink lowers a root that has a single child: the root is the node at
// the lowest height where only one node is left.
func (x *Txn) shrink(ctx context.Context) error {
	for x.root.height > 0 && len(x.root.entries) == 1 {
		a := addrOf(x.root)
		// Built in this Txn or left over from the old tree: either way
		// no node lives at this address any more.
		delete(x.puts, a)
		x.dels[a] = struct{}{}
		ca := childAddr(x.root, 0)
		c, ok := x.puts[ca]
		if !ok {
			var err error
			if c, err = x.t.store.get(ctx, ca); err != nil {
				return err
			}
		}
		x.root = c
	}
	return nil
}

// normalize sorts edits by key and keeps one per key, an upsert winning
// over a delete (a node replaced by one with the same last key).
func normalize(up []edit) []edit {
	slices.SortStableFunc(up, func(a, b edit) int { return a.key.Compare(b.key) })
	out := up[:0]
	for _, e := range up {
		if n := len(out); n > 0 && out[n-1].key == e.key {
			if !e.del {
				out[n-1] = e
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// run is a sequence of adjacent nodes of one height and the edits that
// fall in them.
type run struct {
	nodes []*node
	edits []edit
}

// runs groups sorted edits by the node of height h they fall in and joins
// a node to its successor when its closing entry is deleted.
func (x *Txn) runs(ctx context.Context, h int, edits []edit) ([]run, error) {
	var out []run
	var cur *run
	var curAddr nodeAddr
	for i := 0; i < len(edits); {
		n, err := x.t.locate(ctx, h, edits[i].key, false)
		if err != nil {
			return nil, err
		}
		a := addrOf(n)
		j := i + 1
		// Every following edit up to n's last key falls in n too; the
		// rightmost node takes everything after it.
		for j < len(edits) && (!n.last().Less(edits[j].key) || x.isRightmost(n)) {
			j++
		}
		if cur != nil && curAddr == a {
			cur.edits = append(cur.edits, edits[i:j]...)
		} else if cur != nil && x.joinsNext(cur) && x.nextIs(ctx, h, cur, a) {
			cur.nodes = append(cur.nodes, n)
			cur.edits = append(cur.edits, edits[i:j]...)
			curAddr = a
		} else {
			if cur != nil {
				if err := x.close(ctx, h, cur); err != nil {
					return nil, err
				}
				out = append(out, *cur)
			}
			cur = &run{nodes: []*node{n}, edits: append([]edit(nil), edits[i:j]...)}
			curAddr = a
		}
		i = j
	}
	if cur != nil {
		if err := x.close(ctx, h, cur); err != nil {
			return nil, err
		}
		out = append(out, *cur)
	}
	return out, nil
}

// isRightmost reports whether n is the rightmost node of its height in
// the old tree (an open node always is; a closed one may be too). Its
// last key is then the tree's last key.
func (x *Txn) isRightmost(n *node) bool {
	r := x.t.root
	return r != nil && n.last() == r.last()
}

// joinsNext reports whether the run's last node loses its closing entry,
// so that the node after it must join the run.
func (x *Txn) joinsNext(r *run) bool {
	n := r.nodes[len(r.nodes)-1]
	last := n.last()
	for i := len(r.edits) - 1; i >= 0; i-- {
		if c := r.edits[i].key.Compare(last); c == 0 {
			return r.edits[i].del
		} else if c < 0 {
			return false
		}
	}
	return false
}

// nextIs reports whether the node at address a directly follows the run.
func (x *Txn) nextIs(ctx context.Context, h int, r *run, a nodeAddr) bool {
	s, err := x.t.locate(ctx, h, r.nodes[len(r.nodes)-1].last(), true)
	return err == nil && s != nil && addrOf(s) == a
}

// close extends a run with the nodes that follow it for as long as its
// last node's closing entry is deleted.
func (x *Txn) close(ctx context.Context, h int, r *run) error {
	for x.joinsNext(r) {
		s, err := x.t.locate(ctx, h, r.nodes[len(r.nodes)-1].last(), true)
		if err != nil {
			return err
		}
		if s == nil {
			return nil
		}
		r.nodes = append(r.nodes, s)
	}
	return nil
}

// apply merges a run's entries with its edits. At height 0 it counts the
// keys added and removed.
func (x *Txn) apply(r run, h int) ([]entry, bool) {
	total := 0
	for _, n := range r.nodes {
		total += len(n.entries)
	}
	out := make([]entry, 0, total+len(r.edits))
	changed := false
	ei := 0
	for _, n := range r.nodes {
		for _, e := range n.entries {
			for ei < len(r.edits) && r.edits[ei].key.Less(e.key) {
				if ed := r.edits[ei]; !ed.del {
					out = append(out, ed.e)
					changed = true
					if h == 0 {
						x.added = append(x.added, ed.key)
					}
				}
				ei++
			}
			if ei < len(r.edits) && r.edits[ei].key == e.key {
				ed := r.edits[ei]
				ei++
				switch {
				case ed.del:
					changed = true
					if h == 0 {
						x.removed = append(x.removed, ed.key)
					}
					continue
				case ed.e != e:
					out = append(out, ed.e)
					changed = true
					continue
				}
			}
			out = append(out, e)
		}
	}
	for ; ei < len(r.edits); ei++ {
		if ed := r.edits[ei]; !ed.del {
			out = append(out, ed.e)
			changed = true
			if h == 0 {
				x.added = append(x.added, ed.key)
			}
		}
	}
	return out, changed
}

// chunk cuts a sorted run of entries into nodes of height h, closing a
// node after every entry whose key is a boundary at h and after every
// maxNodeEntries entries since the last close (closes).
func chunk(elems []entry, h int) []*node {
	var out []*node
	start := 0
	for i := range elems {
		if closes(elems[i].key, h, i+1-start) {
			out = append(out, newNode(h, elems[start:i+1:i+1]))
			start = i + 1
		}
	}
	if start < len(elems) {
		out = append(out, newNode(h, elems[start:len(elems):len(elems)]))
	}
	return out
}

// locate returns the node of height h that holds the first key at or
// after k (after k when strict); a key past the end falls in the
// rightmost node, except when strict, where locate returns nil.
func (t *Tree) locate(ctx context.Context, h int, k Key, strict bool) (*node, error) {
	n := t.root
	for n != nil && n.height > h {
		i := n.search(k, strict)
		if i == len(n.entries) {
			if strict {
				return nil, nil
			}
			i--
		}
		c, err := t.child(ctx, n, i)
		if err != nil {
			return nil, err
		}
		n = c
	}
	if n != nil && strict && !k.Less(n.last()) {
		return nil, nil
	}
	return n, nil
}

// cacheWrittenLeaves is the most leaves a Txn may write and still have
// them cached.
const cacheWrittenLeaves = 16

// Commit publishes the written changes to readers and ends the Txn. Call
// it only after the batch given to Write has committed.
func (x *Txn) Commit() {
	if x.ended {
		return
	}
	x.ended = true
	if x.written && x.root != x.t.root {
		for a := range x.dels {
			if _, ok := x.puts[a]; !ok {
				x.t.store.drop(a) // a stale copy, of a rewritten leaf
			}
		}
		leaves := 0
		var edge nodeAddr // the written leaf furthest right
		for a := range x.puts {
			if a.height == 0 {
				if leaves == 0 || edge.less(a) {
					edge = a
				}
				leaves++
			}
		}
		for a, n := range x.puts {
			// A bulk write's leaves are not read again soon: caching
			// them would only evict the internal nodes every read
			// goes through. Those of a small write are, and so is a
			// bulk write's last leaf, which the next write in key
			// order (a catch-up's next batch, live traffic) rewrites.
			if a.height > 0 || leaves <= cacheWrittenLeaves || a == edge {
				x.t.store.add(a, n)
			} else {
				x.t.store.drop(a) // a stale copy, of a rewritten leaf
			}
		}
		x.t.root = x.root
		x.t.updateIndex(x.added, x.removed)
		x.t.updateMemos(context.Background(), x.added, x.removed)
		x.t.fitCache()
	}
	x.t.mu.Unlock()
}

// Discard drops the staged changes and ends the Txn.
func (x *Txn) Discard() {
	if x.ended {
		return
	}
	x.ended = true
	x.t.mu.Unlock()
}

// Apply inserts and deletes keys in a batch of its own and reports how
// many were added and removed. The tree's datastore must be a
// ds.Batching for the change to be atomic; otherwise it is written entry
// by entry.
func (t *Tree) Apply(ctx context.Context, inserts, deletes []Key) (added, removed int, err error) {
	x := t.Begin()
	for _, k := range deletes {
		x.Delete(k)
	}
	for _, k := range inserts {
		x.Insert(k)
	}
	var w ds.Write = t.d
	var b ds.Batch
	if bd, ok := t.d.(ds.Batching); ok {
		if b, err = bd.Batch(ctx); err != nil {
			x.Discard()
			return 0, 0, err
		}
		w = b
	}
	if err = x.Write(ctx, w); err == nil && b != nil {
		err = b.Commit(ctx)
	}
	if err != nil {
		x.Discard()
		return 0, 0, err
	}
	x.Commit()
	return len(x.added), len(x.removed), nil
}
