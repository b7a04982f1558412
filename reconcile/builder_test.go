package reconcile_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	ds "github.com/ipfs/go-datastore"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// build builds a tree of keys (sorted) in d with a Builder, writing its
// closed nodes every every keys (never when 0), and returns it.
func build(t *testing.T, d ds.Batching, keys []reconcile.Key, every int) *reconcile.Tree {
	t.Helper()
	ctx := t.Context()
	tr := newTree(t, d)
	b, err := tr.Build()
	require.NoError(t, err)
	for i, k := range keys {
		require.NoError(t, b.Add(k))
		if every > 0 && i%every == every-1 {
			if i%2 == 0 {
				require.NoError(t, b.WriteClosed(ctx, d))
				require.Zero(t, b.Buffered())
			} else {
				// Part of them: the rest follows with later ones.
				before := b.Buffered()
				require.NoError(t, b.WriteClosedUpTo(ctx, d, 300))
				require.LessOrEqual(t, b.Buffered(), before)
			}
		}
	}
	require.Equal(t, uint64(len(keys)), b.Count())
	batch, err := d.Batch(ctx)
	require.NoError(t, err)
	require.NoError(t, b.Finish(ctx, batch))
	require.NoError(t, batch.Commit(ctx))
	require.NoError(t, b.Commit())
	require.Equal(t, b.Root(), tr.Root())
	return tr
}

// TestBuilderBuildsTheTreeInsertsBuild: for sets of every size up to a
// few levels, with and without runs the size bound closes, a built tree
// stores exactly the records a Txn inserting the same keys stores, reads
// back the same keys, verifies, and takes further inserts as the Txn's
// tree does.
func TestBuilderBuildsTheTreeInsertsBuild(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	ctx := t.Context()
	check := func(t *testing.T, keys []reconcile.Key, every int) {
		ref := newMemStore()
		refTree := newTree(t, ref)
		_, _, err := refTree.Apply(ctx, keys, nil)
		require.NoError(t, err)

		d := newMemStore()
		tr := build(t, d, keys, every)
		require.Equal(t, dump(t, ref), dump(t, d), "%d keys: stored nodes differ", len(keys))
		require.Equal(t, refTree.Root(), tr.Root())
		agg, err := tr.Verify(ctx)
		require.NoError(t, err)
		require.Equal(t, refTree.Root(), agg)
		var got []reconcile.Key
		require.NoError(t, tr.Iterate(ctx, reconcile.Key{}, reconcile.End, func(k reconcile.Key) error {
			got = append(got, k)
			return nil
		}))
		require.Equal(t, len(keys), len(got))
		for i := range keys {
			require.Equal(t, keys[i], got[i])
		}
		// Both trees go on the same way.
		more := make([]reconcile.Key, 1+r.IntN(300))
		for i := range more {
			more[i] = randKey(r, 1<<30)
		}
		_, _, err = refTree.Apply(ctx, more, keys[:len(keys)/3])
		require.NoError(t, err)
		_, _, err = tr.Apply(ctx, more, keys[:len(keys)/3])
		require.NoError(t, err)
		require.Equal(t, dump(t, ref), dump(t, d), "%d keys, then changes: stored nodes differ", len(keys))
	}
	sizes := []int{0, 1, 2, 3, 31, 32, 33, 100, 1000, 1025, 5000, 40000 / reconcile.RaceScale}
	for range 20 / reconcile.RaceScale {
		sizes = append(sizes, 1+r.IntN(20000/reconcile.RaceScale))
	}
	for _, n := range sizes {
		keys := make(model, n)
		for i := range keys {
			keys[i] = randKey(r, 1<<30)
		}
		keys = keys.sorted()
		check(t, keys, []int{0, 1, 7, 1000}[r.IntN(4)])
	}
	// Sets whose last key is of a high level: it closes a node at every
	// height up to the root and above, where nothing may be written.
	for _, n := range []int{1, 2, 20, 40, 100, 1000, 3000 / reconcile.RaceScale} {
		var keys []reconcile.Key
		for len(keys) < n-1 {
			keys = append(keys, randKey(r, 1<<29))
		}
		for {
			k := randKey(r, 1<<30)
			k.TS += 1 << 30
			if reconcile.Level(k) >= 4 {
				keys = append(keys, k)
				break
			}
		}
		check(t, model(keys).sorted(), 0)
	}
	t.Run("size bound", func(t *testing.T) {
		reconcile.SetMaxNodeEntries(t, 4)
		for _, n := range []int{1, 3, 4, 5, 15, 16, 17, 64, 65, 200, 3000 / reconcile.RaceScale} {
			// Keys of level 0 only: every node is closed by the bound.
			var keys []reconcile.Key
			for len(keys) < n {
				if k := randKey(r, 1<<30); reconcile.Level(k) == 0 {
					keys = append(keys, k)
				}
			}
			check(t, model(keys).sorted(), 5)
			var mixed []reconcile.Key
			for range n {
				mixed = append(mixed, randKey(r, 1<<30))
			}
			check(t, model(mixed).sorted(), 0)
		}
	})
}

func TestBuilderRefusesDisorderAndAFullTree(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(13, 14))
	keys := make(model, 10)
	for i := range keys {
		keys[i] = randKey(r, 1<<30)
	}
	keys = keys.sorted()
	d := newMemStore()
	tr := newTree(t, d)
	b, err := tr.Build()
	require.NoError(t, err)
	require.NoError(t, b.Add(keys[1]))
	require.ErrorIs(t, b.Add(keys[1]), reconcile.ErrNotAscending)
	require.ErrorIs(t, b.Add(keys[0]), reconcile.ErrNotAscending)
	require.Error(t, b.Commit(), "Commit before Finish")

	// A writer that breaks the contract: Commit refuses, the tree stays
	// the one that writer made.
	_, _, err = tr.Apply(ctx, keys[5:], nil)
	require.NoError(t, err)
	require.NoError(t, b.Finish(ctx, ds.NewMapDatastore()))
	require.True(t, errors.Is(b.Commit(), reconcile.ErrNotEmpty))
	require.Equal(t, uint64(5), tr.Count())
	_, err = tr.Build()
	require.ErrorIs(t, err, reconcile.ErrNotEmpty)
	require.Error(t, b.Finish(ctx, d), "Finish twice")
}
