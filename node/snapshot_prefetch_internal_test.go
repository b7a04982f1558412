package node

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

// prefetchFile writes a snapshot of n messages in batches of a few
// dozen and returns a Reader of it.
func prefetchFile(t *testing.T, n int) *snapshot.Reader {
	sc := reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/app/1/chat/proto"}
	f, err := os.Create(filepath.Join(t.TempDir(), "f.snap"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	opts := []snapshot.Option{snapshot.WithMaxMessageSize(1 << 10), snapshot.WithMaxBatchSize(2 << 10)}
	w, err := snapshot.NewWriter(f, sc, opts...)
	require.NoError(t, err)
	for i := range n {
		m := reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic,
			Payload: []byte{byte(i), byte(i >> 8), 1, 2, 3}, Timestamp: int64(1_000 + i)}
		require.NoError(t, w.Add(m))
	}
	_, err = w.Close()
	require.NoError(t, err)
	_, err = f.Seek(0, io.SeekStart)
	require.NoError(t, err)
	r, err := snapshot.NewReader(f, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// TestPrefetch: the batches come in file order with the state after
// each, then io.EOF, then the channel closes.
func TestPrefetch(t *testing.T) {
	r := prefetchFile(t, 1000)
	out, stop := prefetch(t.Context(), r, 2)
	defer stop()
	var count uint64
	var next int64
	for i := 0; ; i++ {
		p, ok := <-out
		require.True(t, ok)
		if errors.Is(p.err, io.EOF) {
			break
		}
		require.NoError(t, p.err)
		require.Equal(t, i, p.b.Index)
		if i > 0 {
			require.Equal(t, next, p.b.Offset)
		}
		next = p.b.Next
		count += uint64(len(p.b.Messages))
		require.Equal(t, count, p.at.Count())
		require.Equal(t, p.b.Next, p.at.Offset())
	}
	require.Equal(t, uint64(1000), count)
	_, ok := <-out
	require.False(t, ok)
}

// TestPrefetchStops: stop ends a read part way and waits for it, a
// cancelled context ends it too, and neither reads far ahead.
func TestPrefetchStops(t *testing.T) {
	r := prefetchFile(t, 1000)
	out, stop := prefetch(t.Context(), r, 2)
	<-out
	stop()
	stop()
	// Stopped: the reader is ours again, no more than the channel's
	// room and one batch in hand past the one taken.
	require.LessOrEqual(t, r.State().Batches(), 1+2+1)

	ctx, cancel := context.WithCancel(t.Context())
	out, stop = prefetch(ctx, prefetchFile(t, 1000), 2)
	defer stop()
	cancel()
	for p := range out {
		if p.err != nil {
			require.ErrorIs(t, p.err, context.Canceled)
		}
	}
}
