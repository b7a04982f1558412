package protocol_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// BenchmarkInSyncSession measures an in-sync session over real TCP hosts:
// the bytes of the sync protocol each way, per scope, counted by libp2p
// itself (multistream negotiation included), for 1 and for 100 scopes.
func BenchmarkInSyncSession(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("scopes=%d", n), func(b *testing.B) {
			var scopes []reconcile.Scope
			for i := range n {
				scopes = append(scopes, reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: fmt.Sprintf("/app/1/s%03d/proto", i)})
			}
			bw := metrics.NewBandwidthCounter()
			h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.BandwidthReporter(bw), libp2p.DisableRelay())
			require.NoError(b, err)
			b.Cleanup(func() { h.Close() })
			st := newMemStore(b, scopes...)
			a, err := protocol.New(h, st)
			require.NoError(b, err)
			b.Cleanup(func() { a.Close() })
			other := newNode(b, scopes)
			connect(b, h, other.h)
			for i, sc := range scopes {
				m := msg(sc, t0+int64(i))
				_, err := st.Put(b.Context(), []reconcile.Message{m})
				require.NoError(b, err)
				other.put(b, m)
			}
			time.Sleep(2 * time.Second) // the meters sum up once a second
			before := bw.GetBandwidthForProtocol(protocol.SyncID)
			b.ResetTimer()
			for b.Loop() {
				rep, err := a.Sync(b.Context(), other.h.ID(), scopes...)
				require.NoError(b, err)
				require.Zero(b, rep.Received())
			}
			b.StopTimer()
			time.Sleep(2 * time.Second)
			after := bw.GetBandwidthForProtocol(protocol.SyncID)
			sessions := float64(b.N * n)
			b.ReportMetric(float64(after.TotalOut-before.TotalOut)/sessions, "sent-bytes/scope")
			b.ReportMetric(float64(after.TotalIn-before.TotalIn)/sessions, "received-bytes/scope")
		})
	}
}
