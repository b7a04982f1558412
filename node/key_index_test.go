package node_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// TestKeyIndexFollowsTheStore checks that a store opened WithKeyIndex
// keeps each scope's index equal to its messages through puts, deletes
// and a reopening, and that sessions against it find exactly the
// difference.
func TestKeyIndexFollowsTheStore(t *testing.T) {
	ctx := t.Context()
	r := rand.New(rand.NewPCG(9, 1))
	msgs := randMsgs(r, scopeA, 3000, 1e12)
	indexed := func(s *node.Store) int {
		tr, ok := s.Tree(scopeA)
		require.True(t, ok)
		return tr.CacheStats().IndexKeys
	}

	a, d := newMemStore(t, []reconcile.Scope{scopeA}, node.WithKeyIndex(true))
	_, err := a.Put(ctx, msgs...)
	require.NoError(t, err)
	require.Equal(t, 3000, indexed(a))
	deleted, err := a.DeleteBefore(ctx, scopeA, 1e11)
	require.NoError(t, err)
	require.Positive(t, deleted)
	require.Equal(t, 3000-deleted, indexed(a))

	// A store lacking 40 of a's messages, and holding 25 a lacks.
	var kept []reconcile.Message
	for _, m := range msgs {
		if m.Timestamp >= 1e11 {
			kept = append(kept, m)
		}
	}
	b, _ := newMemStore(t, []reconcile.Scope{scopeA}, node.WithKeyIndex(true))
	_, err = b.Put(ctx, kept[40:]...)
	require.NoError(t, err)
	extra := randMsgs(r, scopeA, 25, 1e12)
	for i := range extra {
		extra[i].Timestamp += 1e12 // after every message of a
	}
	_, err = b.Put(ctx, extra...)
	require.NoError(t, err)
	ta, _ := a.Tree(scopeA)
	tb, _ := b.Tree(scopeA)
	ini, _, _, err := reconcile.Reconcile(ctx, tb, ta, reconcile.Key{}, reconcile.End, reconcile.DefaultParams())
	require.NoError(t, err)
	require.ElementsMatch(t, keysOf(kept[:40]), ini.Need)
	require.ElementsMatch(t, keysOf(extra), ini.Have)

	// Reopened, the index is filled from the tree.
	require.NoError(t, a.Close())
	reopened := openWith(t, d, nil, node.WithKeyIndex(true))
	require.Equal(t, 3000-deleted, indexed(reopened))
}
