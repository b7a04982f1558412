package node_test

import (
	"math/rand/v2"
	"sync"
	"testing"

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
	require.GreaterOrEqual(t, len(log.all), 15, "small batches: many of them")
}
