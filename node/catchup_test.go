package node_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// fill puts n random messages of sc into a node, in batches.
func fill(t *testing.T, n *node.Node, sc reconcile.Scope, count int, seed uint64) []reconcile.Message {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	msgs := randMsgs(r, sc, count, 1e15)
	for i := range msgs {
		msgs[i].Timestamp += t0
	}
	for i := 0; i < len(msgs); i += 5000 {
		_, err := n.Put(t.Context(), msgs[i:min(i+5000, len(msgs))]...)
		require.NoError(t, err)
	}
	return msgs
}

// progressLog collects the progress a context reports.
type progressLog struct {
	mu  sync.Mutex
	all []protocol.Progress
}

func (l *progressLog) note(p protocol.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, p)
}

// TestSyncStreamsEmptyScope: an empty node syncing with a full one
// streams the scope (no reconciliation, no fetch by hash), reports
// catch-up progress against the peer's count, and ends with equal roots.
func TestSyncStreamsEmptyScope(t *testing.T) {
	small := node.WithProtocolOptions(protocol.WithBatchLimits(1024, 64<<10), protocol.WithMaxMessageSize(1024))
	a := startNode(t, t.TempDir(), small)
	b := startNode(t, t.TempDir(), small)
	defer a.Close()
	defer b.Close()
	fill(t, a, chatScope, 20_000, 1)
	require.NoError(t, b.Connect(t.Context(), info(a)))

	var log progressLog
	rep, err := b.SyncNow(protocol.WithProgress(t.Context(), log.note), a.Host().ID(), chatScope)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	sr := rep.Scopes[0]
	require.Equal(t, 20_000, sr.Streamed)
	require.Equal(t, 20_000, sr.Received)
	require.Zero(t, sr.Need, "nothing left to reconcile after the stream")
	require.Equal(t, roots(a)[chatScope], roots(b)[chatScope])
	require.NotEmpty(t, log.all)
	prev := 0
	for _, p := range log.all {
		require.Equal(t, protocol.ProgressCatchUp, p.Kind)
		require.Equal(t, 20_000, p.Total)
		require.GreaterOrEqual(t, p.Done, prev)
		prev = p.Done
	}
	require.Equal(t, 20_000, prev)
	// Bare messages of about 30 bytes: some 2,200 to a 64 KiB batch.
	require.GreaterOrEqual(t, len(log.all), 8, "small batches: many of them")
}

// TestStartWithPeersCatchesUp: a node started empty with three peers
// streams the scope from them (in parallel) and ends with their root;
// the catch-up metrics count what was streamed.
func TestStartWithPeersCatchesUp(t *testing.T) {
	var srcs []*node.Node
	var msgs []reconcile.Message
	for i := range 3 {
		n := startNode(t, t.TempDir())
		defer n.Close()
		if i == 0 {
			msgs = fill(t, n, chatScope, 12_000, 3)
		} else {
			for j := 0; j < len(msgs); j += 4000 {
				_, err := n.Put(t.Context(), msgs[j:j+4000]...)
				require.NoError(t, err)
			}
		}
		srcs = append(srcs, n)
	}
	reg := prometheus.NewRegistry()
	d := startNode(t, t.TempDir(), node.WithPeers(info(srcs[0]), info(srcs[1]), info(srcs[2])), node.WithMetrics(reg))
	defer d.Close()
	want := roots(srcs[0])[chatScope]
	require.Eventually(t, func() bool { return roots(d)[chatScope] == want }, 30*time.Second, 20*time.Millisecond)
	// The root moves when a batch commits, the counter just after.
	streamed := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		n := 0.0
		for _, mf := range mfs {
			if mf.GetName() == "storesync_catchup_messages_total" {
				for _, m := range mf.GetMetric() {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return streamed() >= float64(len(msgs)) }, 5*time.Second, 10*time.Millisecond,
		"streamed %v of %d", streamed(), len(msgs))
}
