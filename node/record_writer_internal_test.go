package node

import (
	"testing"

	"github.com/stretchr/testify/require"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/storesync/storesync/reconcile"
)

// TestRecordWriterReusesOnlyWhereTheBatchCopies: over LevelDB the writer
// reuses its buffers, and the records read back as written; over a batch
// that keeps what it is given, every record gets buffers of its own.
func TestRecordWriterReusesOnlyWhereTheBatchCopies(t *testing.T) {
	sc := reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/app/1/records/proto"}
	ks := newScopeKeys(scopeIDHex(sc.ID()))
	msgs := []reconcile.Message{
		{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: []byte("one"), Timestamp: 1},
		{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: []byte("two, longer"), Timestamp: 2},
		{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: []byte("3"), Timestamp: 3},
	}
	level, err := OpenLevelDB(t.TempDir())
	require.NoError(t, err)
	defer level.Close()
	for name, d := range map[string]ds.Batching{"leveldb": level, "map": dssync.MutexWrap(ds.NewMapDatastore())} {
		b, err := d.Batch(t.Context())
		require.NoError(t, err)
		w := newRecordWriter(b, true)
		require.Equal(t, name == "leveldb", w.raw != nil, "%s: reuses buffers", name)
		for i := range msgs {
			require.NoError(t, w.put(t.Context(), sc.ID(), ks, msgs[i].Key(), &msgs[i]))
		}
		require.NoError(t, b.Commit(t.Context()))
		for i := range msgs {
			v, err := d.Get(t.Context(), ks.msg(msgs[i].Key()))
			require.NoError(t, err)
			var got reconcile.Message
			require.NoError(t, reconcile.UnmarshalMessage(v, &got))
			require.Equal(t, msgs[i], got, "%s: record %d", name, i)
			h := msgs[i].Hash()
			v, err = d.Get(t.Context(), indexKey(&h))
			require.NoError(t, err)
			id, ts, err := parseIndexValue(v)
			require.NoError(t, err)
			require.Equal(t, sc.ID(), id, "%s: index record %d names the scope", name, i)
			require.Equal(t, uint64(msgs[i].Timestamp), ts, "%s: index record %d names the timestamp", name, i)
		}
	}
}
