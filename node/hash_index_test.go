package node_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// TestLocateFollowsPutsAndDeletes: with WithHashIndex a message is found
// by its hash from the commit that stores it (before any flush of the
// tree) until the delete that removes it; an unknown hash is not found,
// and a repair keeps the index whole.
func TestLocateFollowsPutsAndDeletes(t *testing.T) {
	s, d := newMemStore(t, []reconcile.Scope{scopeA, scopeB}, node.WithHashIndex(true))
	r := rand.New(rand.NewPCG(11, 12))
	msgs := append(randMsgs(r, scopeA, 600, 1e9), randMsgs(r, scopeB, 50, 1e9)...)
	_, err := s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	requireLocates(t, s, msgs)

	_, ok, err := s.Locate(t.Context(), reconcile.Hash{1, 2, 3})
	require.NoError(t, err)
	require.False(t, ok, "an unknown hash")

	cut := int64(5e8)
	_, err = s.DeleteBefore(t.Context(), scopeA, cut)
	require.NoError(t, err)
	var kept []reconcile.Message
	for _, m := range msgs {
		_, ok, err := s.Locate(t.Context(), m.Hash())
		require.NoError(t, err)
		gone := m.Scope() == scopeA && m.Timestamp < cut
		require.Equal(t, !gone, ok, "message at %d of %s", m.Timestamp, m.Scope())
		if !gone {
			kept = append(kept, m)
		}
	}
	require.Equal(t, len(kept), indexRecords(t, d), "the deletes took their index records")
	require.NoError(t, s.Close())

	dropHashIndexRecords(t, d)
	_, err = node.Repair(t.Context(), d)
	require.NoError(t, err)
	s2 := openWith(t, d, nil, node.WithHashIndex(true))
	requireLocates(t, s2, kept)
}

// TestHashIndexFollowsTheOption: a store opened without the index keeps
// none and Locate says so; opened with it, the index is built from the
// stored messages; opened without it again, the index is dropped.
func TestHashIndexFollowsTheOption(t *testing.T) {
	s, d := newMemStore(t, []reconcile.Scope{scopeA, scopeB})
	r := rand.New(rand.NewPCG(13, 14))
	msgs := append(randMsgs(r, scopeA, 900, 1e9), randMsgs(r, scopeB, 90, 1e9)...)
	_, err := s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	_, _, err = s.Locate(t.Context(), msgs[0].Hash())
	require.ErrorIs(t, err, node.ErrNoHashIndex)
	require.Zero(t, indexRecords(t, d))
	require.NoError(t, s.Close())

	s2, err := node.OpenStore(t.Context(), d, node.WithHashIndex(true))
	require.NoError(t, err)
	requireLocates(t, s2, msgs)
	require.NoError(t, s2.Close())

	s3, err := node.OpenStore(t.Context(), d)
	require.NoError(t, err)
	require.Zero(t, indexRecords(t, d), "the index is dropped")
	more := randMsgs(r, scopeA, 20, 1e9)
	_, err = s3.Put(t.Context(), more...)
	require.NoError(t, err)
	require.NoError(t, s3.Close())

	// Messages stored while the index was off are found once it is on.
	s4 := openWith(t, d, nil, node.WithHashIndex(true))
	requireLocates(t, s4, append(msgs, more...))
}

// indexRecords counts the hash index records of d.
func indexRecords(t *testing.T, d ds.Datastore) int {
	t.Helper()
	res, err := d.Query(t.Context(), dsq.Query{Prefix: "/storesync/x", KeysOnly: true})
	require.NoError(t, err)
	all, err := res.Rest()
	require.NoError(t, err)
	return len(all)
}

// dropHashIndexRecords deletes every hash index record of d, leaving the
// record that says the index is whole.
func dropHashIndexRecords(t *testing.T, d ds.Datastore) {
	t.Helper()
	res, err := d.Query(t.Context(), dsq.Query{Prefix: "/storesync/x", KeysOnly: true})
	require.NoError(t, err)
	idx, err := res.Rest()
	require.NoError(t, err)
	require.NotEmpty(t, idx)
	for _, e := range idx {
		require.NoError(t, d.Delete(t.Context(), ds.RawKey(e.Key)))
	}
}

// requireLocates checks that s finds each message by its hash alone.
func requireLocates(t *testing.T, s *node.Store, msgs []reconcile.Message) {
	t.Helper()
	for _, m := range msgs {
		loc, ok, err := s.Locate(t.Context(), m.Hash())
		require.NoError(t, err)
		require.True(t, ok, "message %s located", m.Hash())
		require.Equal(t, node.Located{Scope: m.Scope(), Key: m.Key()}, loc)
	}
}
