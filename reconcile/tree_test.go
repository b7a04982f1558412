package reconcile_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// randKey returns a key with a timestamp in [1, span] and a hash derived
// from the seed, so that tests are reproducible.
func randKey(r *rand.Rand, span uint64) reconcile.Key {
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], r.Uint64())
	return reconcile.Key{TS: 1 + r.Uint64N(span), Hash: sha256.Sum256(seed[:])}
}

// model is the tree's reference: a sorted slice of keys.
type model []reconcile.Key

func (m model) sorted() model {
	s := slices.Clone(m)
	slices.SortFunc(s, func(a, b reconcile.Key) int { return a.Compare(b) })
	return slices.Compact(s)
}

func (m model) inRange(lo, hi reconcile.Key) model {
	var out model
	for _, k := range m {
		if !k.Less(lo) && k.Less(hi) {
			out = append(out, k)
		}
	}
	return out
}

func aggOf(keys model) reconcile.Aggregate {
	var a reconcile.Aggregate
	for _, k := range keys {
		a = a.AddHash(&k.Hash)
	}
	return a
}

func newTree(t testing.TB, d ds.Datastore) *reconcile.Tree {
	t.Helper()
	tr, err := reconcile.Open(t.Context(), d, ds.NewKey("/t"))
	require.NoError(t, err)
	return tr
}

func newMemStore() ds.Batching { return dssync.MutexWrap(ds.NewMapDatastore()) }

// checkAgainst compares the tree with the model on the whole set and on
// random ranges, and verifies the tree's structure.
func checkAgainst(t *testing.T, r *rand.Rand, tr *reconcile.Tree, m model, span uint64) {
	t.Helper()
	ctx := t.Context()
	agg, err := tr.Verify(ctx)
	require.NoError(t, err)
	require.Equal(t, aggOf(m), agg)
	require.Equal(t, aggOf(m), tr.Root())
	var got model
	require.NoError(t, tr.Iterate(ctx, reconcile.Key{}, reconcile.End, func(k reconcile.Key) error {
		got = append(got, k)
		return nil
	}))
	require.Equal(t, len(m), len(got))
	if len(m) > 0 {
		require.Equal(t, m, got)
	}
	for range 20 {
		lo, hi := randKey(r, span+2), randKey(r, span+2)
		if r.IntN(4) == 0 {
			lo = reconcile.TimeBound(lo.TS)
		}
		if hi.Less(lo) {
			lo, hi = hi, lo
		}
		want := m.inRange(lo, hi)
		a, err := tr.Aggregate(ctx, lo, hi)
		require.NoError(t, err)
		require.Equal(t, aggOf(want), a, "range [%v, %v)", lo, hi)
		last, ok, err := tr.Last(ctx, lo, hi)
		require.NoError(t, err)
		require.Equal(t, len(want) > 0, ok)
		if ok {
			require.Equal(t, want[len(want)-1], last)
		}
		if len(want) > 0 {
			k := want[r.IntN(len(want))]
			has, err := tr.Has(ctx, k)
			require.NoError(t, err)
			require.True(t, has, "Has(%v)", k)
		}
		missing := randKey(r, span)
		if !slices.ContainsFunc(m, func(k reconcile.Key) bool { return k == missing }) {
			has, err := tr.Has(ctx, missing)
			require.NoError(t, err)
			require.False(t, has, "Has(%v) of a key not in the tree", missing)
		}
		var it model
		require.NoError(t, tr.Iterate(ctx, lo, hi, func(k reconcile.Key) error {
			it = append(it, k)
			return nil
		}))
		require.Equal(t, len(want), len(it))
		if len(want) > 0 {
			require.Equal(t, want, it)
		}
		first, n := uint64(0), uint64(1+r.IntN(200))
		if r.IntN(3) == 0 {
			first = uint64(r.IntN(200))
		}
		cells, err := reconcile.SketchBytes(ctx, tr, lo, hi, first, n)
		require.NoError(t, err)
		wantCells, err := reconcile.ReadSketchBytes(ctx, reconcile.SliceSet(want), lo, hi, first, n)
		require.NoError(t, err)
		require.Equal(t, wantCells, cells, "cells [%d, %d) of [%v, %v)", first, first+n, lo, hi)
		splits, err := tr.Splits(ctx, lo, hi)
		require.NoError(t, err)
		prev := lo
		for _, b := range splits {
			require.True(t, prev.Less(b) && b.Less(hi), "split %v outside (%v, %v)", b, prev, hi)
			prev = b
		}
		checkSplitCounts(t, tr, m, lo, hi, splits)
	}
}

// checkSplitCounts checks the counts the tree gives the parts of its
// splits without reading them: each is exact but for the keys that share
// a timestamp with the last key below one of the part's bounds.
func checkSplitCounts(t *testing.T, tr *reconcile.Tree, m model, lo, hi reconcile.Key, splits []reconcile.Key) {
	t.Helper()
	bounds, counts, err := reconcile.SplitCounts(t.Context(), tr, lo, hi)
	require.NoError(t, err)
	require.Equal(t, splits, bounds)
	if len(bounds) == 0 {
		return
	}
	require.Len(t, counts, len(bounds)+1)
	// sharing is how many other keys share the timestamp of the last key
	// below x.
	sharing := func(x reconcile.Key) int {
		below := m.inRange(reconcile.Key{}, x)
		if len(below) == 0 {
			return 0
		}
		ts := below[len(below)-1].TS
		return len(m.inRange(reconcile.TimeBound(ts), reconcile.TimeBound(ts+1))) - 1
	}
	edges := append(append([]reconcile.Key{lo}, bounds...), hi)
	for i, c := range counts {
		exact := len(m.inRange(edges[i], edges[i+1]))
		slack := sharing(edges[i]) + sharing(edges[i+1])
		require.InDelta(t, exact, int(c), float64(slack), "part %d of [%v, %v): %d keys, counted %d", i, lo, hi, exact, c)
	}
}

func TestTreeMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const span = 1 << 20
	tr := newTree(t, newMemStore())
	var m model
	for round := range 60 {
		m = randomRound(t, r, tr, m, 400, func() reconcile.Key { return randKey(r, span) })
		checkAgainst(t, r, tr, m, span)
		if round%20 == 19 {
			// Delete most of the set now and then, so that the tree
			// shrinks through its heights too.
			_, _, err := tr.Apply(t.Context(), nil, m[:len(m)*9/10])
			require.NoError(t, err)
			m = applyModel(m, nil, m[:len(m)*9/10])
			checkAgainst(t, r, tr, m, span)
		}
	}
}

// randomRound applies one Txn of up to size random inserts (of keys from
// newKey) and deletes (of keys in m), plus a re-insert of a present key
// and a delete of an absent one, which are no-ops; it checks the keys the
// Txn reports added and removed against the model and returns the model
// after the Txn.
func randomRound(t *testing.T, r *rand.Rand, tr *reconcile.Tree, m model, size int, newKey func() reconcile.Key) model {
	t.Helper()
	var ins, del []reconcile.Key
	for range r.IntN(size) + 1 {
		if len(m) > 0 && r.IntN(3) == 0 {
			del = append(del, m[r.IntN(len(m))])
		} else {
			ins = append(ins, newKey())
		}
	}
	if len(m) > 0 {
		ins = append(ins, m[r.IntN(len(m))])
	}
	del = append(del, newKey())
	added, removed := applyTxn(t, tr, ins, del)
	wantAdded, wantRemoved := changesOf(m, ins, del)
	require.Equal(t, wantAdded, added, "AddedKeys")
	require.Equal(t, wantRemoved, removed, "RemovedKeys")
	return applyModel(m, ins, del)
}

// applyTxn applies deletes, then inserts, through a Txn of their own and
// returns the keys it reports added and removed.
func applyTxn(t *testing.T, tr *reconcile.Tree, ins, del []reconcile.Key) (added, removed model) {
	t.Helper()
	x := tr.Begin()
	for _, k := range del {
		x.Delete(k)
	}
	for _, k := range ins {
		x.Insert(k)
	}
	b := ds.NewMapDatastore()
	require.NoError(t, x.Write(t.Context(), b))
	added, removed = append(model(nil), x.AddedKeys()...), append(model(nil), x.RemovedKeys()...)
	x.Discard()
	_, _, err := tr.Apply(t.Context(), ins, del)
	require.NoError(t, err)
	return added, removed
}

// changesOf returns, from the model, the keys an Apply of ins and del
// adds and removes, each sorted: an insert wins over a delete of the same
// key.
func changesOf(m model, ins, del []reconcile.Key) (added, removed model) {
	present := make(map[reconcile.Key]bool, len(m))
	for _, k := range m {
		present[k] = true
	}
	inserted := make(map[reconcile.Key]bool)
	for _, k := range ins {
		if !present[k] && !inserted[k] {
			added = append(added, k)
		}
		inserted[k] = true
	}
	seen := make(map[reconcile.Key]bool)
	for _, k := range del {
		if present[k] && !inserted[k] && !seen[k] {
			removed = append(removed, k)
		}
		seen[k] = true
	}
	return added.sorted(), removed.sorted()
}

// applyModel deletes, then inserts, as Tree.Apply does.
func applyModel(m model, ins, del []reconcile.Key) model {
	gone := make(map[reconcile.Key]bool)
	for _, k := range del {
		gone[k] = true
	}
	var out model
	for _, k := range m {
		if !gone[k] {
			out = append(out, k)
		}
	}
	return append(out, ins...).sorted()
}

func TestTreeCountsChanges(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tr := newTree(t, newMemStore())
	keys := []reconcile.Key{randKey(r, 100), randKey(r, 100), randKey(r, 100)}
	added, removed, err := tr.Apply(t.Context(), keys, nil)
	require.NoError(t, err)
	require.Equal(t, 3, added)
	require.Equal(t, 0, removed)
	added, removed, err = tr.Apply(t.Context(), keys[:1], []reconcile.Key{keys[1], randKey(r, 100)})
	require.NoError(t, err)
	require.Equal(t, 0, added)
	require.Equal(t, 1, removed)
	require.EqualValues(t, 2, tr.Count())
}

// dump returns every record of a datastore.
func dump(t *testing.T, d ds.Datastore) map[string]string {
	t.Helper()
	res, err := d.Query(t.Context(), dsq.Query{})
	require.NoError(t, err)
	all, err := res.Rest()
	require.NoError(t, err)
	out := make(map[string]string, len(all))
	for _, e := range all {
		out[e.Key] = string(e.Value)
	}
	return out
}

// TestHistoryIndependence builds the same final set along many different
// histories (orders, batch sizes, detours through keys deleted again) and
// requires byte-identical datastores, hence identical nodes and roots.
func TestHistoryIndependence(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	checkHistoryIndependence(t, r, 3000, 500, 8, func() reconcile.Key { return randKey(r, 1<<30) })
}

// checkHistoryIndependence builds a set of size keys from newKey in one
// Txn, then the same set along trials other histories: with extra more
// keys, in random order, one key a Txn or random batches, and the extra
// keys deleted again in random batches. Every history must leave the
// same stored records.
func checkHistoryIndependence(t *testing.T, r *rand.Rand, size, extras, trials int, newKey func() reconcile.Key) {
	t.Helper()
	final := make(model, size)
	for i := range final {
		final[i] = newKey()
	}
	final = final.sorted()
	ref := newMemStore()
	refTree := newTree(t, ref)
	_, _, err := refTree.Apply(t.Context(), final, nil)
	require.NoError(t, err)
	want := dump(t, ref)
	for trial := range trials {
		d := newMemStore()
		tr := newTree(t, d)
		extra := make(model, extras)
		for i := range extra {
			extra[i] = newKey()
		}
		extra = slices.DeleteFunc(extra.sorted(), func(k reconcile.Key) bool { return slices.Contains(final, k) })
		pending := append(slices.Clone(final), extra...)
		r.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
		for len(pending) > 0 {
			n := min(len(pending), 1+r.IntN(200))
			if trial%2 == 0 {
				n = 1 // one key per transaction
			}
			_, _, err := tr.Apply(t.Context(), pending[:n], nil)
			require.NoError(t, err)
			pending = pending[n:]
		}
		// Take the detour back out in random batches.
		r.Shuffle(len(extra), func(i, j int) { extra[i], extra[j] = extra[j], extra[i] })
		for len(extra) > 0 {
			n := min(len(extra), 1+r.IntN(100))
			_, _, err := tr.Apply(t.Context(), nil, extra[:n])
			require.NoError(t, err)
			extra = extra[n:]
		}
		require.Equal(t, refTree.Root(), tr.Root())
		require.Equal(t, refTree.Root().Fingerprint(), tr.Root().Fingerprint())
		require.Equal(t, want, dump(t, d), "trial %d: stored nodes differ", trial)
	}
}

func TestReopenKeepsRoot(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	d := newMemStore()
	tr := newTree(t, d)
	keys := make([]reconcile.Key, 5000)
	for i := range keys {
		keys[i] = randKey(r, 1<<40)
	}
	_, _, err := tr.Apply(t.Context(), keys, nil)
	require.NoError(t, err)
	root := tr.Root()

	again := newTree(t, d)
	require.Equal(t, root, again.Root())
	require.Equal(t, tr.Height(), again.Height())
	agg, err := again.Verify(t.Context())
	require.NoError(t, err)
	require.Equal(t, root, agg)

	// The reopened tree keeps working.
	_, _, err = again.Apply(t.Context(), nil, keys[:2500])
	require.NoError(t, err)
	require.Equal(t, aggOf(model(keys[2500:])), again.Root())
}

func TestTxnDiscardLeavesTreeUnchanged(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	d := newMemStore()
	tr := newTree(t, d)
	_, _, err := tr.Apply(t.Context(), []reconcile.Key{randKey(r, 10)}, nil)
	require.NoError(t, err)
	before := tr.Root()
	x := tr.Begin()
	x.Insert(randKey(r, 10))
	b, err := d.Batch(t.Context())
	require.NoError(t, err)
	require.NoError(t, x.Write(t.Context(), b))
	x.Discard() // the batch is never committed
	require.Equal(t, before, tr.Root())
	agg, err := newTree(t, d).Verify(t.Context())
	require.NoError(t, err)
	require.Equal(t, before, agg)
}

func TestEmptyTree(t *testing.T) {
	tr := newTree(t, newMemStore())
	require.Equal(t, -1, tr.Height())
	require.Zero(t, tr.Count())
	a, err := tr.Aggregate(context.Background(), reconcile.Key{}, reconcile.End)
	require.NoError(t, err)
	require.Zero(t, a.Count)
	_, ok, err := tr.Last(t.Context(), reconcile.Key{}, reconcile.End)
	require.NoError(t, err)
	require.False(t, ok)
}

// countingWrite counts the records a Txn writes.
type countingWrite struct {
	ds.Write
	puts int
}

func (c *countingWrite) Put(ctx context.Context, k ds.Key, v []byte) error {
	c.puts++
	return c.Write.Put(ctx, k, v)
}

// TestEdgeInsertsReopen appends keys one at a time at the right edge of
// the tree, with a middle insert or a delete now and then, and reopens
// the tree cold from its datastore every few steps: the reopened tree
// must match the model exactly (open nodes are stored without the entry
// of their open child and completed on reading). An append at the edge
// writes the open leaf and only what it closes, not the whole spine.
func TestEdgeInsertsReopen(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	d := newMemStore()
	tr := newTree(t, d)
	var m model
	ts := uint64(1000)
	puts, appends := 0, 0
	for step := range 3000 {
		var ins, del []reconcile.Key
		switch x := r.IntN(20); {
		case x == 0 && len(m) > 0:
			del = append(del, m[r.IntN(len(m))])
		case x == 1:
			ins = append(ins, randKey(r, ts))
		case x == 2 && len(m) > 0:
			del = append(del, m[len(m)-1]) // the newest key: the open leaf shrinks
		default:
			ts += 1 + uint64(r.IntN(100))
			k := randKey(r, 1)
			k.TS = ts
			ins = append(ins, k)
		}
		x := tr.Begin()
		for _, k := range del {
			x.Delete(k)
		}
		for _, k := range ins {
			x.Insert(k)
		}
		w := &countingWrite{Write: d}
		require.NoError(t, x.Write(t.Context(), w))
		x.Commit()
		if len(del) == 0 && len(ins) == 1 && ins[0].TS == ts {
			puts += w.puts
			appends++
		}
		m = applyModel(m, ins, del)
		if step%97 == 0 || step == 2999 {
			cold, err := reconcile.Open(t.Context(), d, ds.NewKey("/t"), reconcile.WithCacheEntries(1024))
			require.NoError(t, err)
			agg, err := cold.Verify(t.Context())
			require.NoError(t, err)
			require.Equal(t, aggOf(m), agg)
			checkAgainst(t, r, cold, m, ts+1)
			tr = cold // and go on writing through the reopened tree
		}
	}
	// The open leaf, plus a closed leaf a 32nd of the time, and so on up:
	// about 1.1 records per append, where rewriting the spine would cost
	// one per height (3 here).
	t.Logf("%.2f records written per append at the edge (height %d)", float64(puts)/float64(appends), tr.Height())
	require.Less(t, float64(puts)/float64(appends), 1.5)
}

// TestWarmSketchesFillsTheMemos: after WarmSketches, a sketch of the
// whole tree reads no node, and its cells are those of the keys.
func TestWarmSketchesFillsTheMemos(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	keys := model(pool(r, 100_000, 1<<40))
	d := &countingReads{Batching: newMemStore()}
	tr, err := reconcile.Open(t.Context(), d, ds.NewKey("/t"), reconcile.WithCacheEntries(1024))
	require.NoError(t, err)
	_, _, err = tr.Apply(t.Context(), keys, nil)
	require.NoError(t, err)
	require.Zero(t, tr.CacheStats().CellMemos)
	require.NoError(t, tr.WarmSketches(t.Context()))
	require.Greater(t, tr.CacheStats().CellMemos, len(keys)/32/64, "a memo per subtree of height 1 or more")
	d.gets.Store(0)
	cells, err := reconcile.SketchBytes(t.Context(), tr, reconcile.Key{}, reconcile.End, 0, 100)
	require.NoError(t, err)
	require.Zero(t, d.gets.Load(), "no node read once warm")
	want, err := reconcile.ReadSketchBytes(t.Context(), reconcile.SliceSet(keys), reconcile.Key{}, reconcile.End, 0, 100)
	require.NoError(t, err)
	require.Equal(t, want, cells)

	// The fill reads every leaf once and caches none of them.
	big, err := reconcile.Open(t.Context(), newMemStore(), ds.NewKey("/t"))
	require.NoError(t, err)
	_, _, err = big.Apply(t.Context(), keys, nil)
	require.NoError(t, err)
	before := big.CacheStats().NodeEntries
	require.NoError(t, big.WarmSketches(t.Context()))
	require.LessOrEqual(t, big.CacheStats().NodeEntries, before+64, "no leaf of the fill stays cached")
}

// TestScanKeepsInternalNodesCached: a read of every leaf (an Iterate over
// the tree) evicts leaves from the node cache, never the internal nodes
// every later read passes through: a point lookup then reads one leaf.
func TestScanKeepsInternalNodesCached(t *testing.T) {
	r := rand.New(rand.NewPCG(73, 74))
	keys := model(pool(r, 100_000, 1<<40))
	d := &countingReads{Batching: newMemStore()}
	tr, err := reconcile.Open(t.Context(), d, ds.NewKey("/t"), reconcile.WithCacheEntries(8192))
	require.NoError(t, err)
	_, _, err = tr.Apply(t.Context(), keys, nil)
	require.NoError(t, err)
	require.NoError(t, tr.Iterate(t.Context(), reconcile.Key{}, reconcile.End, func(reconcile.Key) error { return nil }))
	for range 20 {
		d.gets.Store(0)
		has, err := tr.Has(t.Context(), keys[r.IntN(len(keys))])
		require.NoError(t, err)
		require.True(t, has)
		require.LessOrEqual(t, d.gets.Load(), int64(1), "at most the leaf is read")
	}
}
