package node

import (
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/reconcile"
)

// FuzzCheckRelayed decodes arbitrary bytes as a relayed Waku message: no
// input panics, and what the node would store is a valid message of a
// kept scope within the size and clock limits, persistent and of
// version 0.
func FuzzCheckRelayed(f *testing.F) {
	sc := reconcile.Scope{PubsubTopic: "/waku/2/rs/1/4", ContentTopic: "/jswaku/1/feasibility/proto"}
	now := time.Unix(1_800_000_000, 0)
	s, err := OpenStore(f.Context(), dssync.MutexWrap(ds.NewMapDatastore()), WithNow(func() time.Time { return now }))
	require.NoError(f, err)
	f.Cleanup(func() { _ = s.Close() })
	require.NoError(f, s.AddScope(f.Context(), sc))
	n := &Node{store: s}
	for _, wm := range []*pb.WakuMessage{
		{ContentTopic: sc.ContentTopic, Payload: []byte("x"), Timestamp: now.UnixNano()},
		{ContentTopic: sc.ContentTopic, Payload: []byte("x"), Timestamp: now.UnixNano(), Ephemeral: true, Version: 1},
		{ContentTopic: "/a/1/b/c", Meta: []byte("m"), Timestamp: now.UnixNano() + 1},
	} {
		b, err := wm.Marshal()
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, store, err := n.checkRelayed(sc.PubsubTopic, b)
		if err != nil || !store {
			return
		}
		var wm pb.WakuMessage
		require.NoError(t, wm.Unmarshal(b))
		require.False(t, wm.Ephemeral)
		require.Zero(t, wm.Version)
		require.Equal(t, sc, m.Scope())
		require.NoError(t, m.Validate())
		require.NoError(t, m.CheckSize(s.cfg.maxMessageSize))
		d := time.Duration(m.Timestamp - now.UnixNano())
		require.True(t, d <= s.cfg.maxClockSkew && d >= -s.cfg.maxClockSkew, "timestamp %v from now", d)
	})
}
