package reconcile

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"
)

// indexTestKey draws a key: timestamps in a few windows and hashes that
// often share their first 3 bytes, so that many keys share a short ID,
// as an author grinding them would make them.
func indexTestKey(r *rand.Rand) Key {
	var k Key
	k.TS = uint64(1+r.IntN(4))<<idWindowBits + uint64(r.IntN(1000))
	for i := range k.Hash {
		k.Hash[i] = byte(r.Uint32())
	}
	if r.IntN(2) == 0 {
		k.Hash[0], k.Hash[1], k.Hash[2] = 7, 7, byte(r.IntN(2))
	}
	return k
}

// modelKeysWithIDs is what keysWithIDs must return: the keys of model in
// [lo, hi) whose short IDs are in ids, in key order.
func modelKeysWithIDs(model map[Key]bool, lo, hi Key, ids []ShortID) []Key {
	var out []Key
	for k := range model {
		if !k.Less(lo) && k.Less(hi) && slices.Contains(ids, keyID(&k)) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, Key.Compare)
	return out
}

// checkIndex compares keysWithIDs on t, which keeps a key index, with the
// model, for random ranges and ID sets that mix held, dropped and
// unknown IDs.
func checkIndex(t *testing.T, r *rand.Rand, tr *Tree, model map[Key]bool, seen []Key) {
	t.Helper()
	ctx := context.Background()
	require.Equal(t, len(model), tr.CacheStats().IndexKeys)
	for range 20 {
		var ids []ShortID
		for range 1 + r.IntN(8) {
			switch {
			case len(seen) > 0 && r.IntN(4) > 0:
				ids = append(ids, keyID(&seen[r.IntN(len(seen))]))
			default:
				k := indexTestKey(r)
				ids = append(ids, keyID(&k))
			}
		}
		lo, hi := Key{}, End
		if r.IntN(2) == 0 {
			a, b := indexTestKey(r), indexTestKey(r)
			if b.Less(a) {
				a, b = b, a
			}
			lo, hi = a, b
		}
		got, err := keysWithIDs(ctx, tr, lo, hi, ids)
		require.NoError(t, err)
		want := modelKeysWithIDs(model, lo, hi, ids)
		if len(want) == 0 {
			require.Empty(t, got)
			continue
		}
		require.Equal(t, want, got)
	}
}

// TestKeyIndexMatchesTheTree is the model test of the key index: through
// inserts and deletes in random batches, a bulk build, and a reopening,
// the keys it finds for any IDs and range are exactly those of the tree.
func TestKeyIndexMatchesTheTree(t *testing.T) {
	ctx := context.Background()
	defer func(n int) { minRebuild = n }(minRebuild)
	for seed := range uint64(8) {
		// Rebuilds of the index's array every few changes, or never.
		minRebuild = []int{16, 1 << 30}[seed%4/2]
		r := rand.New(rand.NewPCG(seed, 11))
		d := dssync.MutexWrap(ds.NewMapDatastore())
		tr, err := Open(ctx, d, ds.NewKey("/t"), WithKeyIndex())
		require.NoError(t, err)
		model := map[Key]bool{}
		var seen []Key
		if seed%2 == 1 {
			// Start from a bulk build.
			keys := make([]Key, 300)
			for i := range keys {
				keys[i] = indexTestKey(r)
			}
			slices.SortFunc(keys, Key.Compare)
			keys = slices.Compact(keys)
			b, err := tr.Build()
			require.NoError(t, err)
			for _, k := range keys {
				require.NoError(t, b.Add(k))
				model[k] = true
			}
			require.NoError(t, b.Finish(ctx, d))
			require.NoError(t, b.Commit())
			seen = append(seen, keys...)
		}
		checkIndex(t, r, tr, model, seen)
		for range 30 {
			var ins, del []Key
			for range r.IntN(40) {
				k := indexTestKey(r)
				ins = append(ins, k)
				seen = append(seen, k)
			}
			for range r.IntN(30) {
				if len(seen) > 0 {
					del = append(del, seen[r.IntN(len(seen))])
				}
			}
			// Apply deletes first: a key both deleted and inserted in
			// one batch stays.
			_, _, err := tr.Apply(ctx, ins, del)
			require.NoError(t, err)
			for _, k := range del {
				delete(model, k)
			}
			for _, k := range ins {
				model[k] = true
			}
			require.Equal(t, uint64(len(model)), tr.Count())
			checkIndex(t, r, tr, model, seen)
		}
		reopened, err := Open(ctx, d, ds.NewKey("/t"), WithKeyIndex())
		require.NoError(t, err)
		checkIndex(t, r, reopened, model, seen)
	}
}

// TestKeyIndexSessionsFindTheSameDifference runs the same sessions
// between trees that keep a key index and trees that do not: both find
// exactly the difference.
func TestKeyIndexSessionsFindTheSameDifference(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 5))
	var common, onlyA, onlyB []Key
	draw := func(n int) []Key {
		out := make([]Key, n)
		for i := range out {
			out[i].TS = uint64(1_700_000_000_000_000_000 + r.Int64N(1e15))
			for j := range out[i].Hash {
				out[i].Hash[j] = byte(r.Uint32())
			}
		}
		return out
	}
	common, onlyA, onlyB = draw(20000), draw(300), draw(200)
	for _, indexed := range []bool{false, true} {
		var opts []Option
		if indexed {
			opts = append(opts, WithKeyIndex())
		}
		d := dssync.MutexWrap(ds.NewMapDatastore())
		a, err := Open(ctx, d, ds.NewKey("/a"), opts...)
		require.NoError(t, err)
		b, err := Open(ctx, d, ds.NewKey("/b"), opts...)
		require.NoError(t, err)
		_, _, err = a.Apply(ctx, append(slices.Clone(common), onlyA...), nil)
		require.NoError(t, err)
		_, _, err = b.Apply(ctx, append(slices.Clone(common), onlyB...), nil)
		require.NoError(t, err)
		ini, _, _, err := Reconcile(ctx, b, a, Key{}, End, DefaultParams())
		require.NoError(t, err, "indexed %v", indexed)
		require.ElementsMatch(t, onlyA, ini.Need, "indexed %v", indexed)
		require.ElementsMatch(t, onlyB, ini.Have, "indexed %v", indexed)
	}
}

// TestKeyIndexAgainstAModel drives the index alone through random adds
// and removes, with its array rebuilt every few changes, and compares
// every lookup and its count with a model.
func TestKeyIndexAgainstAModel(t *testing.T) {
	defer func(n int) { minRebuild = n }(minRebuild)
	minRebuild = 8
	r := rand.New(rand.NewPCG(21, 4))
	ix := newKeyIndex()
	model := map[Key]bool{}
	var seen []Key
	for step := range 5000 {
		switch {
		case len(seen) > 0 && r.IntN(3) == 0:
			k := seen[r.IntN(len(seen))]
			ix.remove(k)
			delete(model, k)
		case len(seen) > 0 && r.IntN(4) == 0:
			k := seen[r.IntN(len(seen))] // back, after a remove
			if !model[k] {
				ix.addNew(k)
				model[k] = true
			}
		default:
			k := indexTestKey(r)
			if !model[k] {
				ix.addNew(k)
				model[k] = true
			}
			seen = append(seen, k)
		}
		require.Equal(t, len(model), ix.n, "step %d", step)
		k := seen[r.IntN(len(seen))]
		id := keyID(&k)
		got := ix.appendKeys(nil, id, Key{}, End)
		slices.SortFunc(got, Key.Compare)
		want := modelKeysWithIDs(model, Key{}, End, []ShortID{id})
		if len(want) == 0 {
			require.Empty(t, got, "step %d", step)
		} else {
			require.Equal(t, want, got, "step %d", step)
		}
	}
}
