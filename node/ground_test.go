package node_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// groundMessage returns a message of sc at ts whose hash ends no tree
// node at any height (its level is 0: the top five bits of hash byte 24
// are not all zero), as an author can grind at about 1.03 tries a
// message.
func groundMessage(sc reconcile.Scope, ts int64) reconcile.Message {
	for {
		m := message(sc, ts)
		if h := m.Hash(); h[24]>>3 != 0 {
			return m
		}
	}
}

// TestGroundHashesKeepTheScopeReadable: 12,000 messages of one second
// whose hashes were ground so that none ends a tree node are stored, the
// node restarts and verifies every tree on open, and an empty node syncs
// the scope from it. Before the tree bounded its nodes, such a scope was
// one node larger than any reader accepts: it could not be opened again,
// here or on any node that synced it.
func TestGroundHashesKeepTheScopeReadable(t *testing.T) {
	dir := t.TempDir()
	a := startNode(t, dir)
	msgs := make([]reconcile.Message, 12_000)
	for i := range msgs {
		msgs[i] = groundMessage(chatScope, t0+int64(i)*1e4)
	}
	for from := 0; from < len(msgs); from += 3000 {
		res, err := a.Put(t.Context(), msgs[from:from+3000]...)
		require.NoError(t, err)
		require.Len(t, res.Added, 3000)
	}
	want := roots(a)[chatScope]
	require.NoError(t, a.Close())

	a = startNode(t, dir, node.WithStoreOptions(node.WithVerifyOnOpen(true)))
	defer a.Close()
	require.Equal(t, want, roots(a)[chatScope])
	bDir := t.TempDir()
	b := startNode(t, bDir, node.WithStoreOptions(node.WithVerifyOnOpen(true)))
	require.NoError(t, b.Connect(t.Context(), info(a)))
	rep, err := b.SyncNow(t.Context(), a.Host().ID(), chatScope)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	require.Equal(t, want, roots(b)[chatScope])
	require.Len(t, all(t, b, chatScope), len(msgs))
	require.NoError(t, b.Close())
	b = startNode(t, bDir, node.WithStoreOptions(node.WithVerifyOnOpen(true)))
	defer b.Close()
	require.Equal(t, want, roots(b)[chatScope])
}
