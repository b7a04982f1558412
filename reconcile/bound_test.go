package reconcile_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// groundKey returns a key of level 0: one that ends no node at any
// height, as an author who grinds message hashes can make every key of
// a time range, at about 1.03 tries a key.
func groundKey(r *rand.Rand, span uint64) reconcile.Key {
	for {
		if k := randKey(r, span); reconcile.Level(k) == 0 {
			return k
		}
	}
}

// mixedKey returns a ground key nine times in ten, an ordinary one
// otherwise.
func mixedKey(r *rand.Rand, span uint64) reconcile.Key {
	if r.IntN(10) == 0 {
		return randKey(r, span)
	}
	return groundKey(r, span)
}

// TestBoundedNodesMatchModel is the model test over keys nearly all
// ground, with a node bound small enough that runs meet it at every
// height: the tree keeps matching the model, Verify (which refuses a node
// above the bound or not closed where chunking closes) passes after
// every change, and the stored tree reopens to the same root.
func TestBoundedNodesMatchModel(t *testing.T) {
	reconcile.SetMaxNodeEntries(t, 8)
	r := rand.New(rand.NewPCG(11, 12))
	const span = 1 << 12 // few timestamps: long runs within one
	d := newMemStore()
	tr := newTree(t, d)
	var m model
	height := 0
	for round := range 80 {
		m = randomRound(t, r, tr, m, 300, func() reconcile.Key { return mixedKey(r, span) })
		checkAgainst(t, r, tr, m, span)
		height = max(height, tr.Height())
		if round%10 == 9 {
			again := newTree(t, d)
			agg, err := again.Verify(t.Context())
			require.NoError(t, err)
			require.Equal(t, aggOf(m), agg)
		}
		if round%25 == 24 {
			_, _, err := tr.Apply(t.Context(), nil, m[:len(m)*9/10])
			require.NoError(t, err)
			m = applyModel(m, nil, m[:len(m)*9/10])
			checkAgainst(t, r, tr, m, span)
		}
	}
	require.Greater(t, height, 2, "the bound was met above the leaves")
	flagged := 0
	for k, v := range dump(t, d) {
		if strings.HasPrefix(k, "/t/n/") && (v[0] == 3 || v[0] == 4) {
			flagged++ // an internal node with a child closed by the bound
		}
	}
	require.Positive(t, flagged)
}

// TestBoundedHistoryIndependence: with nodes closed by the bound, the
// same set still gives byte-identical stored trees along any history.
func TestBoundedHistoryIndependence(t *testing.T) {
	reconcile.SetMaxNodeEntries(t, 8)
	r := rand.New(rand.NewPCG(13, 14))
	checkHistoryIndependence(t, r, 2000, 300, 6, func() reconcile.Key { return mixedKey(r, 1<<10) })
}

// TestGroundKeysAtTheRealBound: 70,000 ground keys of one second, the
// attack that used to make a scope unreadable (one node of them all,
// refused on read), stored in random batches at the real bound: the tree
// verifies, reopens and verifies again, and a key inserted among them
// and deleted again leaves it as it was.
func TestGroundKeysAtTheRealBound(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(15, 16))
	keys := make(model, 70_000)
	for i := range keys {
		keys[i] = groundKey(r, 1)
	}
	keys = keys.sorted()
	d := newMemStore()
	tr := newTree(t, d)
	order := slices.Clone(keys)
	r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for len(order) > 0 {
		n := min(len(order), 1+r.IntN(20_000))
		_, _, err := tr.Apply(ctx, order[:n], nil)
		require.NoError(t, err)
		order = order[n:]
	}
	check := func(tr *reconcile.Tree) {
		t.Helper()
		agg, err := tr.Verify(ctx)
		require.NoError(t, err)
		require.Equal(t, aggOf(keys), agg)
	}
	check(tr)
	again := newTree(t, d)
	check(again)
	before := dump(t, d)
	extra := groundKey(r, 1)
	_, _, err := again.Apply(ctx, []reconcile.Key{extra}, nil)
	require.NoError(t, err)
	_, _, err = again.Apply(ctx, nil, []reconcile.Key{extra})
	require.NoError(t, err)
	require.Equal(t, before, dump(t, d))
	check(newTree(t, d))
}
