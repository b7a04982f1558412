package node_test

import (
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// FuzzDecodeScopeRecord reads arbitrary bytes as a scope record, the one
// record of the store that is not a tree node or a message: decoding must
// give an error or a record that encodes back to the same bytes, and
// OpenStore over a datastore holding the bytes must open or fail with
// ErrCorrupt, never panic.
func FuzzDecodeScopeRecord(f *testing.F) {
	var h reconcile.Hash
	h[0], h[31] = 0xff, 0x01
	f.Add(node.EncodeScopeRecord(scopeA, reconcile.Aggregate{}))
	f.Add(node.EncodeScopeRecord(scopeA, reconcile.Aggregate{}.AddHash(&h)))
	f.Add(node.EncodeScopeRecord(reconcile.Scope{PubsubTopic: "p", ContentTopic: string(make([]byte, 200))},
		reconcile.Aggregate{Count: 1 << 60, Sum: reconcile.Sum{1, 2, 3, 4}}))
	f.Add([]byte{})
	f.Add([]byte{1, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, agg, err := node.DecodeScopeRecord(data)
		if err == nil {
			require.NotEmpty(t, sc.PubsubTopic)
			require.NotEmpty(t, sc.ContentTopic)
			require.Equal(t, data, node.EncodeScopeRecord(sc, agg))
		}

		d := dssync.MutexWrap(ds.NewMapDatastore())
		require.NoError(t, d.Put(t.Context(), recordKey(scopeA), data))
		s, err := node.OpenStore(t.Context(), d)
		if err != nil {
			require.ErrorIs(t, err, node.ErrCorrupt)
			return
		}
		// Only scopeA's own record with an empty count and sum agrees
		// with the empty tree.
		require.Equal(t, []reconcile.Scope{scopeA}, s.Scopes())
		require.Equal(t, reconcile.Aggregate{}, agg)
		require.NoError(t, s.Close())
	})
}
