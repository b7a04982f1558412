package node_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// putAll puts msgs into n in calls of 500 and requires every one stored.
func putAll(t *testing.T, n *node.Node, msgs []reconcile.Message) {
	t.Helper()
	for from := 0; from < len(msgs); from += 500 {
		res, err := n.Put(t.Context(), msgs[from:min(from+500, len(msgs))]...)
		require.NoError(t, err)
		require.Empty(t, res.Rejected)
	}
}

// chaos runs f every period on a goroutine until the returned stop is
// called, which waits for it.
func chaos(period time.Duration, f func()) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// syncUntilEqual syncs b with a (reconnecting as needed) until both hold
// the same root for sc, or fails the test after a deadline.
func syncUntilEqual(t *testing.T, a, b *node.Node, sc reconcile.Scope) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for roots(a)[sc] != roots(b)[sc] {
		require.True(t, time.Now().Before(deadline), "no convergence")
		_ = b.Connect(t.Context(), info(a))
		_, _ = b.SyncNow(t.Context(), a.Host().ID(), sc)
	}
}

// TestSyncSurvivesDroppedConnections: two nodes that each hold messages
// the other lacks sync while their connection is dropped every few tens
// of milliseconds, mid-session, mid-fetch and mid-stream. Once the drops
// stop, a session settles it: both hold every message either was given,
// an empty third node streams the whole scope the same way, and every
// store verifies on reopen.
func TestSyncSurvivesDroppedConnections(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir()
	a, b := startNode(t, dirA), startNode(t, dirB)
	shared := make([]reconcile.Message, 0, 6000)
	for i := range 6000 {
		shared = append(shared, message(chatScope, t0+int64(i)*1e6+int64(r.IntN(1e6))))
	}
	putAll(t, a, shared[:4000])
	putAll(t, b, shared[2000:])

	drops := 0
	stop := chaos(30*time.Millisecond, func() {
		drops++
		_ = b.Host().Network().ClosePeer(a.Host().ID())
	})
	// At least 20 sessions, and more until a drop has broken one: on a
	// fast machine the first, which carries the difference, may end
	// before the first drop, and those after it take a millisecond.
	cut := 0 // sessions the drops broke
	until := time.Now().Add(20 * time.Second)
	for n := 0; n < 20 || (cut == 0 && time.Now().Before(until)); n++ {
		_ = b.Connect(t.Context(), info(a))
		if rep, err := b.SyncNow(t.Context(), a.Host().ID(), chatScope); err != nil || rep.Err() != nil {
			cut++
		}
	}
	stop()
	require.Positive(t, drops)
	require.Positive(t, cut, "the drops hit sessions")
	syncUntilEqual(t, a, b, chatScope)
	want := map[reconcile.Hash]bool{}
	for _, m := range shared {
		want[m.Hash()] = true
	}
	require.Equal(t, want, all(t, a, chatScope))
	require.Equal(t, want, all(t, b, chatScope))

	c := startNode(t, dirC)
	stop = chaos(40*time.Millisecond, func() { _ = c.Host().Network().ClosePeer(a.Host().ID()) })
	for range 10 {
		_ = c.Connect(t.Context(), info(a))
		_, _ = c.SyncNow(t.Context(), a.Host().ID(), chatScope)
	}
	stop()
	syncUntilEqual(t, a, c, chatScope)
	require.Equal(t, want, all(t, c, chatScope))

	for _, n := range []struct {
		node *node.Node
		dir  string
	}{{a, dirA}, {b, dirB}, {c, dirC}} {
		root := roots(n.node)[chatScope]
		require.NoError(t, n.node.Close())
		again := startNode(t, n.dir, node.WithStoreOptions(node.WithVerifyOnOpen(true)))
		require.Equal(t, root, roots(again)[chatScope])
		require.NoError(t, again.Close())
	}
}

// TestSyncSurvivesWriteErrors: a node whose datastore refuses one write
// in three keeps serving and syncing without losing what it committed;
// once the datastore recovers, sessions bring it level with its peer and
// its store verifies.
func TestSyncSurvivesWriteErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	dirB := t.TempDir()
	lb, err := node.OpenLevelDB(dirB + "/datastore")
	require.NoError(t, err)
	fw := &failingDS{Batching: lb}
	a := startNode(t, t.TempDir())
	b := startNode(t, dirB, node.WithDatastore(fw), node.WithStoreOptions(node.WithFlush(256, time.Hour)))
	var msgs []reconcile.Message
	for i := range 5000 {
		msgs = append(msgs, message(chatScope, t0+int64(i)*1e6+int64(r.IntN(1e6))))
	}
	putAll(t, a, msgs)
	require.NoError(t, b.Connect(t.Context(), info(a)))

	fw.every.Store(3)
	acked := map[reconcile.Hash]bool{}
	broken := 0 // sessions and puts the errors broke
	for i := range 30 {
		if rep, err := b.SyncNow(t.Context(), a.Host().ID(), chatScope); err != nil || rep.Err() != nil {
			broken++
		}
		m := message(chatScope, t0+int64(6000+i)*1e6)
		if res, err := b.Put(t.Context(), m); err == nil && len(res.Added) == 1 {
			acked[m.Hash()] = true
		} else {
			broken++
		}
	}
	require.Positive(t, fw.failed.Load())
	require.Positive(t, broken, "the write errors reached the callers")
	fw.every.Store(0)
	for range 5 {
		_, err := a.SyncNow(t.Context(), b.Host().ID(), chatScope)
		require.NoError(t, err)
		_, err = b.SyncNow(t.Context(), a.Host().ID(), chatScope)
		require.NoError(t, err)
	}
	require.Equal(t, roots(a)[chatScope], roots(b)[chatScope])
	got := all(t, b, chatScope)
	for h := range acked {
		require.True(t, got[h], "a Put that returned the message as added lost it")
	}
	require.Len(t, got, len(msgs)+len(acked))
	root := roots(b)[chatScope]
	require.NoError(t, b.Close())
	require.NoError(t, lb.Close())
	again := startNode(t, dirB, node.WithStoreOptions(node.WithVerifyOnOpen(true)))
	require.Equal(t, root, roots(again)[chatScope])
	require.NoError(t, again.Close())
}

// TestSyncConvergesUnderClockSkew: two nodes whose clocks differ by three
// times their settle delay put messages stamped by their own clocks while
// they sync both ways; each leaves a different recent window out of its
// sessions. Once the newest messages are older than skew and settle on
// both clocks, sessions leave both with every message either was given.
func TestSyncConvergesUnderClockSkew(t *testing.T) {
	const settle, skew = 500 * time.Millisecond, 1500 * time.Millisecond
	ahead := func() time.Time { return time.Now().Add(skew) }
	a := startNode(t, t.TempDir(), node.WithProtocolOptions(protocol.WithWindow(0, settle), protocol.WithNow(ahead)),
		node.WithStoreOptions(node.WithNow(ahead)))
	b := startNode(t, t.TempDir(), node.WithProtocolOptions(protocol.WithWindow(0, settle)))
	require.NoError(t, b.Connect(t.Context(), info(a)))
	want := map[reconcile.Hash]bool{}
	end := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		for _, n := range []struct {
			node  *node.Node
			clock func() time.Time
		}{{a, ahead}, {b, time.Now}} {
			m := message(chatScope, n.clock().UnixNano())
			res, err := n.node.Put(t.Context(), m)
			require.NoError(t, err)
			require.Len(t, res.Added, 1)
			want[m.Hash()] = true
		}
		if i%5 == 0 {
			_, _ = a.SyncNow(t.Context(), b.Host().ID(), chatScope)
			_, _ = b.SyncNow(t.Context(), a.Host().ID(), chatScope)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(skew + settle + 200*time.Millisecond)
	for _, pair := range [][2]*node.Node{{a, b}, {b, a}} {
		rep, err := pair[0].SyncNow(t.Context(), pair[1].Host().ID(), chatScope)
		require.NoError(t, err)
		require.NoError(t, rep.Err())
	}
	require.Equal(t, want, all(t, a, chatScope))
	require.Equal(t, want, all(t, b, chatScope))
	require.Equal(t, roots(a)[chatScope], roots(b)[chatScope])
}
