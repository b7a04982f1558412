package node_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// TestHistoryPagesOverAnyDatastore: over a datastore that cannot scan key
// ranges (the tree finds the keys), paging backward and forward with
// cursors returns every message of the scopes once, in Waku order.
func TestHistoryPagesOverAnyDatastore(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA, scopeB}, node.WithHashIndex(true))
	r := rand.New(rand.NewPCG(31, 32))
	msgs := append(randMsgs(r, scopeA, 150, 1e6), randMsgs(r, scopeB, 60, 1e6)...)
	_, err := s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	want := sortedKeys(msgs)

	for _, forward := range []bool{true, false} {
		q := protocol.HistoryQuery{Forward: forward, Limit: 13, MaxBytes: 1 << 20}
		var pages [][]reconcile.Hash
		for {
			page, err := s.History(t.Context(), q)
			require.NoError(t, err)
			var hashes []reconcile.Hash
			for _, e := range page.Entries {
				hashes = append(hashes, e.Hash)
			}
			pages = append(pages, hashes)
			if !page.More {
				break
			}
			at := page.Entries[len(page.Entries)-1].Hash
			if !forward {
				at = page.Entries[0].Hash
			}
			q.Cursor = &at
		}
		if !forward {
			slices.Reverse(pages)
		}
		got := slices.Concat(pages...)
		wantHashes := make([]reconcile.Hash, len(want))
		for i, k := range want {
			wantHashes[i] = k.Hash
		}
		require.Equal(t, wantHashes, got, "forward %v", forward)
	}
}
