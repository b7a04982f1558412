package protocol_test

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

func delimit(msgs ...proto.Message) []byte {
	var b []byte
	for _, m := range msgs {
		raw, _ := proto.Marshal(m)
		b = binary.AppendUvarint(b, uint64(len(raw)))
		b = append(b, raw...)
	}
	return b
}

// FuzzSyncHandler writes arbitrary bytes to a server's sync and fetch
// handlers over in-process streams: whatever arrives, the server must
// answer or reset, never panic (the hostile tests check that it keeps
// serving honest peers).
func FuzzSyncHandler(f *testing.F) {
	id := chat.ID()
	first := &pb.ReconcileFrame{Items: []*pb.RangeItem{{Mode: pb.Mode_FINGERPRINT, Fingerprint: make([]byte, 16), Count: 3}}}
	f.Add(false, delimit(&pb.SyncRequest{Scopes: []*pb.ScopeOpen{{Scope: id[:], First: first}}}))
	f.Add(false, delimit(&pb.SyncRequest{Scopes: []*pb.ScopeOpen{{Scope: id[:], First: first}}},
		&pb.SyncFrame{Scope: 0, Frame: &pb.ReconcileFrame{}}, &pb.SyncFrame{EndOfTurn: true, Finish: true}))
	f.Add(true, delimit(&pb.FetchRequest{Scope: id[:], Keys: reconcile.AppendKeys(nil, []reconcile.Key{{TS: 1}, {TS: 2}}),
		AcceptZstd: true}))

	mn, err := mocknet.FullMeshConnected(2)
	require.NoError(f, err)
	f.Cleanup(func() { mn.Close() })
	hs := mn.Hosts()
	store := newMemStore(f, chat)
	for i := range 50 {
		_, err := store.Put(context.Background(), []reconcile.Message{msg(chat, t0+int64(i))})
		require.NoError(f, err)
	}
	// One peer plays every input: the session limits and rates, which
	// would refuse it before reading its input, are lifted. (Over
	// mocknet's unbuffered streams a refusal written while the client is
	// still writing also stalls both ends, which real streams do not.)
	svc, err := protocol.New(hs[0], store, protocol.WithTimeouts(5*time.Second, 100*time.Millisecond),
		protocol.WithSessionLimits(64, 64), protocol.WithRates(0, 0, 0))
	require.NoError(f, err)
	f.Cleanup(func() { svc.Close() })
	f.Fuzz(func(t *testing.T, fetch bool, data []byte) {
		pid := protocol.SyncID
		if fetch {
			pid = protocol.FetchID
		}
		s, err := hs[1].NewStream(context.Background(), hs[0].ID(), pid)
		require.NoError(t, err)
		_, _ = s.Write(data)
		_ = s.CloseWrite()
		_ = s.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(s, 8<<20))
		_ = s.Reset()
	})
}
