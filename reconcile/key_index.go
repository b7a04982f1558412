package reconcile

import (
	"cmp"
	"context"
	"slices"
)

// keyIndex maps the short IDs of a tree's keys to the keys (WithKeyIndex),
// so that a side finds the keys of the IDs a session decoded in memory,
// without the leaf read and the walk down the tree that each otherwise
// costs (keysWithIDs).
//
// The keys sit in one array sorted by short ID, then key (40 bytes a
// key), beside two small sets of the changes since the array was last
// rebuilt: keys added (by short ID) and keys of the array removed. The
// array is rebuilt when those pass an eighth of it, so a change costs
// O(log N) and, amortized, a few keys copied. Several keys may share a
// short ID (an author may grind them); the index keeps them all.
type keyIndex struct {
	base []Key            // sorted by idOrder
	gone map[Key]struct{} // keys of base removed since the rebuild
	// fresh and more hold the keys added since the rebuild, not in
	// base: fresh the key of an ID one key has, more all those of an
	// ID several keys had (a map of keys, not of slices, so that a key
	// costs no allocation of its own).
	fresh  map[ShortID]Key
	more   map[ShortID][]Key
	nfresh int // keys in fresh and more
	n      int // keys indexed
}

// keyIndexBytes is what a key costs the index, in its array; a rebuild
// holds the old array and the new one for a moment.
const keyIndexBytes = KeySize

// minRebuild is the fewest changes that rebuild the array; a variable so
// that tests can make rebuilds frequent.
var minRebuild = 4096

func newKeyIndex() *keyIndex {
	return &keyIndex{gone: make(map[Key]struct{}), fresh: make(map[ShortID]Key), more: make(map[ShortID][]Key)}
}

// idOrder orders keys by short ID, then by key.
func idOrder(a, b Key) int {
	if c := cmp.Compare(keyID(&a), keyID(&b)); c != 0 {
		return c
	}
	return a.Compare(b)
}

// inBase reports whether base holds k, removed or not.
func (ix *keyIndex) inBase(k Key) bool {
	_, ok := slices.BinarySearchFunc(ix.base, k, idOrder)
	return ok
}

// addNew indexes k, which the index does not hold: a key a write added
// to the tree, whose keys the index holds exactly, so no search of the
// array is needed.
func (ix *keyIndex) addNew(k Key) {
	ix.n++
	if _, ok := ix.gone[k]; ok {
		delete(ix.gone, k)
		return
	}
	id := keyID(&k)
	switch o, ok := ix.fresh[id]; {
	case ok:
		delete(ix.fresh, id)
		ix.more[id] = []Key{o, k}
	case len(ix.more[id]) > 0:
		ix.more[id] = append(ix.more[id], k)
	default:
		ix.fresh[id] = k
	}
	ix.nfresh++
	ix.maybeRebuild()
}

// remove drops k from the index, if it is there.
func (ix *keyIndex) remove(k Key) {
	id := keyID(&k)
	if o, ok := ix.fresh[id]; ok && o == k {
		delete(ix.fresh, id)
		ix.nfresh--
		ix.n--
		return
	}
	if ks := ix.more[id]; len(ks) > 0 {
		if i := slices.Index(ks, k); i >= 0 {
			if ks = slices.Delete(ks, i, i+1); len(ks) == 0 {
				delete(ix.more, id)
			} else {
				ix.more[id] = ks
			}
			ix.nfresh--
			ix.n--
			return
		}
	}
	if _, ok := ix.gone[k]; ok || !ix.inBase(k) {
		return
	}
	ix.gone[k] = struct{}{}
	ix.n--
	ix.maybeRebuild()
}

// maybeRebuild folds the changes into the array once they pass an eighth
// of it.
func (ix *keyIndex) maybeRebuild() {
	if ix.nfresh+len(ix.gone) < max(minRebuild, len(ix.base)/8) {
		return
	}
	added := make([]Key, 0, ix.nfresh)
	for _, k := range ix.fresh {
		added = append(added, k)
	}
	for _, ks := range ix.more {
		added = append(added, ks...)
	}
	slices.SortFunc(added, idOrder)
	if len(ix.gone) == 0 && (len(ix.base) == 0 || len(added) == 0 || idOrder(ix.base[len(ix.base)-1], added[0]) < 0) {
		// Keys added past every key of the array, as live traffic
		// adds them: no merge.
		ix.base = append(ix.base, added...)
		ix.clearChanges()
		return
	}
	out := make([]Key, 0, ix.n)
	i := 0
	for _, k := range ix.base {
		if _, ok := ix.gone[k]; ok {
			continue
		}
		for i < len(added) && idOrder(added[i], k) < 0 {
			out = append(out, added[i])
			i++
		}
		out = append(out, k)
	}
	out = append(out, added[i:]...)
	ix.base = out
	ix.clearChanges()
}

// load makes the index hold exactly keys, which it takes and sorts.
func (ix *keyIndex) load(keys []Key) {
	slices.SortFunc(keys, idOrder)
	ix.base = slices.Compact(keys)
	ix.clearChanges()
	ix.n = len(ix.base)
}

// appendKeys appends the keys of [lo, hi) whose short ID is id.
func (ix *keyIndex) appendKeys(dst []Key, id ShortID, lo, hi Key) []Key {
	in := func(k Key) bool { return !k.Less(lo) && k.Less(hi) }
	i, _ := slices.BinarySearchFunc(ix.base, id, func(k Key, id ShortID) int { return cmp.Compare(keyID(&k), id) })
	for ; i < len(ix.base) && keyID(&ix.base[i]) == id; i++ {
		if _, ok := ix.gone[ix.base[i]]; !ok && in(ix.base[i]) {
			dst = append(dst, ix.base[i])
		}
	}
	if k, ok := ix.fresh[id]; ok && in(k) {
		dst = append(dst, k)
	}
	for _, k := range ix.more[id] {
		if in(k) {
			dst = append(dst, k)
		}
	}
	return dst
}

// clearChanges forgets the changes, which the array now holds. Fresh
// maps rather than cleared ones: a cleared map keeps the room it grew
// to.
func (ix *keyIndex) clearChanges() {
	ix.gone = make(map[Key]struct{})
	ix.fresh = make(map[ShortID]Key)
	ix.more = make(map[ShortID][]Key)
	ix.nfresh = 0
}

// fillKeyIndex indexes every key of t, which no one else uses yet.
func (t *Tree) fillKeyIndex(ctx context.Context) error {
	keys := make([]Key, 0, t.Count())
	if err := t.Iterate(ctx, Key{}, End, func(k Key) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return err
	}
	t.index.load(keys)
	return nil
}

// updateIndex applies a committed write to the key index, if the tree
// keeps one. The caller holds mu for writing.
func (t *Tree) updateIndex(added, removed []Key) {
	if t.index == nil {
		return
	}
	for _, k := range removed {
		t.index.remove(k)
	}
	for _, k := range added {
		t.index.addNew(k) // new to the tree, so to the index
	}
}

// keysByIndex returns the keys of [lo, hi) whose short IDs are in ids, in
// key order, from the key index, which the tree must keep.
func (t *Tree) keysByIndex(lo, hi Key, ids []ShortID) []Key {
	t.mu.RLock()
	var out []Key
	for _, id := range ids {
		out = t.index.appendKeys(out, id, lo, hi)
	}
	t.mu.RUnlock()
	slices.SortFunc(out, Key.Compare)
	return slices.Compact(out) // an ID asked for twice
}
