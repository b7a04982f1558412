package node_test

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

func TestDeleteBefore(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA, scopeB})
	r := rand.New(rand.NewPCG(9, 10))
	// More old messages than one delete batch holds.
	msgs := randMsgs(r, scopeA, 4000, 10_000)
	others := randMsgs(r, scopeB, 200, 10_000)
	_, err := s.Put(t.Context(), append(msgs, others...)...)
	require.NoError(t, err)
	before, _ := s.Stats(scopeA)

	const cut = 7000
	old := filterMsgs(msgs, func(m reconcile.Message) bool { return m.Timestamp < cut })
	kept := filterMsgs(msgs, func(m reconcile.Message) bool { return m.Timestamp >= cut })
	require.Greater(t, len(old), 1000)

	n, err := s.DeleteBefore(t.Context(), scopeA, cut)
	require.NoError(t, err)
	require.Equal(t, len(old), n)

	st, _ := s.Stats(scopeA)
	require.Equal(t, uint64(len(kept)), st.Count)
	require.Equal(t, fingerprintOf(t, kept), st.Root)
	require.Equal(t, before.Newest, st.Newest)
	require.Equal(t, sortedKeys(kept), treeKeys(t, s, scopeA))
	tr, _ := s.Tree(scopeA)
	agg, err := tr.Verify(t.Context())
	require.NoError(t, err)
	require.Equal(t, st.Count, agg.Count)

	got, err := s.Get(t.Context(), scopeA, keysOf(old))
	require.NoError(t, err)
	for _, m := range got {
		require.Nil(t, m)
	}
	got, err = s.Get(t.Context(), scopeA, keysOf(kept))
	require.NoError(t, err)
	require.NotContains(t, got, (*reconcile.Message)(nil))

	// The other scope keeps everything; repeating deletes nothing.
	st, _ = s.Stats(scopeB)
	require.Equal(t, uint64(len(others)), st.Count)
	n, err = s.DeleteBefore(t.Context(), scopeA, cut)
	require.NoError(t, err)
	require.Zero(t, n)

	// Deleting everything empties the scope.
	n, err = s.DeleteBefore(t.Context(), scopeA, 1<<62)
	require.NoError(t, err)
	require.Equal(t, len(kept), n)
	st, _ = s.Stats(scopeA)
	require.Zero(t, st.Count)
	require.Zero(t, st.Newest)
	require.Equal(t, fingerprintOf(t, nil), st.Root)

	_, err = s.DeleteBefore(t.Context(), scopeX, cut)
	require.ErrorIs(t, err, node.ErrUnknownScope)
}

func TestDeleteBeforeConcurrent(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA})
	r := rand.New(rand.NewPCG(19, 20))
	msgs := randMsgs(r, scopeA, 5000, 10_000)
	_, err := s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	const cut = 6000
	old := filterMsgs(msgs, func(m reconcile.Message) bool { return m.Timestamp < cut })
	kept := filterMsgs(msgs, func(m reconcile.Message) bool { return m.Timestamp >= cut })
	// Newer messages arrive while two deleters race over the same keys.
	newer := randMsgs(r, scopeA, 1000, 10_000)
	for i := range newer {
		newer[i].Timestamp += 10_000
	}

	var removed atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			n, err := s.DeleteBefore(t.Context(), scopeA, cut)
			assert.NoError(t, err)
			removed.Add(int64(n))
		})
	}
	wg.Go(func() {
		for i := 0; i < len(newer); i += 50 {
			_, err := s.Put(t.Context(), newer[i:i+50]...)
			assert.NoError(t, err)
		}
	})
	wg.Wait()

	require.Equal(t, int64(len(old)), removed.Load(), "each message removed once")
	want := append(kept, newer...)
	st, _ := s.Stats(scopeA)
	require.Equal(t, uint64(len(want)), st.Count)
	require.Equal(t, fingerprintOf(t, want), st.Root)
	require.Equal(t, sortedKeys(want), treeKeys(t, s, scopeA))
}
