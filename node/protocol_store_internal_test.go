package node

import (
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// TestScopeCountLeavesPendingKeysPending: the count the protocol checks
// fetches against holds the messages just committed, and reading it
// writes no tree: their keys stay pending in the journal.
func TestScopeCountLeavesPendingKeysPending(t *testing.T) {
	sc := reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/app/1/count/proto"}
	s, err := OpenStore(t.Context(), dssync.MutexWrap(ds.NewMapDatastore()), WithFlush(1000, time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.AddScope(t.Context(), sc))
	ts := time.Now().Add(-time.Hour).UnixNano()
	for i := range 10 {
		_, err := s.Put(t.Context(), reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic,
			Payload: []byte{byte(i)}, Timestamp: ts + int64(i)})
		require.NoError(t, err)
	}
	n, ok := protocolStore{s}.ScopeCount(sc)
	require.True(t, ok)
	require.Equal(t, uint64(10), n)
	st, _ := s.state(sc)
	require.Equal(t, 10, st.pending.len(), "nothing flushed")
	_, ok = protocolStore{s}.ScopeCount(reconcile.Scope{PubsubTopic: "/p", ContentTopic: "/c"})
	require.False(t, ok)
}
