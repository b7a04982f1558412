package node

import (
	"context"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// TestLegacyBulkRecordIsFinished: a one-pass import killed before bulk
// records moved after the messages left its record at /storesync/bulk/;
// OpenStore still keeps that scope with the messages stored, and removes
// the record.
func TestLegacyBulkRecordIsFinished(t *testing.T) {
	ctx := context.Background()
	sc := reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/legacy/1/bulk/proto"}
	d := dssync.MutexWrap(ds.NewMapDatastore())
	s, err := OpenStore(ctx, d)
	require.NoError(t, err)
	require.NoError(t, s.AddScope(ctx, sc))
	var msgs []reconcile.Message
	for i := range 500 {
		msgs = append(msgs, reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic,
			Payload: []byte{byte(i), byte(i >> 8)}, Timestamp: int64(1e15 + i)})
	}
	_, err = s.Put(ctx, msgs...)
	require.NoError(t, err)
	want, _ := s.Stats(sc)
	require.NoError(t, s.Close())

	// What such an import left: the message records, and no scope record
	// or tree, but the bulk record at its old key.
	idHex := scopeIDHex(sc.ID())
	require.NoError(t, d.Delete(ctx, scopeRecordKey(idHex)))
	require.NoError(t, deletePrefix(ctx, d, treeKey(idHex)))
	legacy := legacyBulksKey.ChildString(idHex)
	require.NoError(t, d.Put(ctx, legacy, (&bulkRecord{scope: sc}).encode()))

	s, err = OpenStore(ctx, d, WithVerifyOnOpen(true))
	require.NoError(t, err)
	defer s.Close()
	got, ok := s.Stats(sc)
	require.True(t, ok, "the scope is kept")
	require.Equal(t, want.Count, got.Count)
	require.Equal(t, want.Root, got.Root)
	has, err := d.Has(ctx, legacy)
	require.NoError(t, err)
	require.False(t, has)
}
