package node_test

import (
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

var (
	chatScope  = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/app/1/chat/proto"}
	filesScope = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/app/1/files/proto"}
)

// startNode runs a node on LevelDB in dir, listening on 127.0.0.1, with
// its identity kept in dir.
func startNode(t *testing.T, dir string, opts ...node.Option) *node.Node {
	t.Helper()
	key, err := node.LoadOrCreateIdentity(filepath.Join(dir, "identity.key"))
	require.NoError(t, err)
	n, err := node.New(t.Context(), append([]node.Option{
		node.WithDataDir(dir), node.WithIdentity(key), node.WithListenAddrs("/ip4/127.0.0.1/tcp/0"),
		node.WithScopes(chatScope, filesScope),
	}, opts...)...)
	require.NoError(t, err)
	return n
}

func info(n *node.Node) peer.AddrInfo {
	return peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()}
}

func message(sc reconcile.Scope, ts int64) reconcile.Message {
	p := make([]byte, 32)
	_, _ = rand.Read(p)
	return reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: p, Timestamp: ts}
}

// all returns the hashes of every message a node keeps in a scope.
func all(t *testing.T, n *node.Node, sc reconcile.Scope) map[reconcile.Hash]bool {
	t.Helper()
	out := map[reconcile.Hash]bool{}
	q := node.Query{Scope: sc, Limit: node.MaxQueryLimit}
	for {
		p, err := n.Query(t.Context(), q)
		require.NoError(t, err)
		for _, m := range p.Messages {
			out[m.Hash()] = true
		}
		if !p.More {
			return out
		}
		q.After = p.Next
	}
}

func roots(n *node.Node) map[reconcile.Scope]reconcile.Fingerprint {
	out := map[reconcile.Scope]reconcile.Fingerprint{}
	for _, s := range n.Status() {
		out[s.Scope] = s.Root
	}
	return out
}

const t0 = int64(1_780_000_000_000_000_000)

func TestTwoNodesConverge(t *testing.T) {
	a, b := startNode(t, t.TempDir()), startNode(t, t.TempDir())
	defer a.Close()
	defer b.Close()
	var onlyA, onlyB int
	for i := range 400 {
		m := message(chatScope, t0+int64(i)*1e8)
		f := message(filesScope, t0+int64(i)*1e8)
		switch i % 5 {
		case 0:
			_, err := a.Put(t.Context(), m, f)
			require.NoError(t, err)
			onlyA++
		case 1:
			_, err := b.Put(t.Context(), m, f)
			require.NoError(t, err)
			onlyB++
		default:
			_, err := a.Put(t.Context(), m, f)
			require.NoError(t, err)
			_, err = b.Put(t.Context(), m, f)
			require.NoError(t, err)
		}
	}
	sub := a.Subscribe(t.Context(), 1000)
	require.NoError(t, a.Connect(t.Context(), info(b)))
	rep, err := a.SyncNow(t.Context(), b.Host().ID())
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	for _, s := range rep.Scopes {
		require.Equal(t, onlyB, s.Received)
		require.Equal(t, onlyA, s.Sent)
	}
	for _, sc := range []reconcile.Scope{chatScope, filesScope} {
		require.Equal(t, all(t, a, sc), all(t, b, sc))
	}
	require.Equal(t, roots(a), roots(b))
	// Subscribers see messages from sync like any others.
	require.Len(t, sub.C(), 2*onlyB)
	for _, s := range a.Status() {
		require.Equal(t, b.Host().ID(), s.LastSync.Peer)
		require.EqualValues(t, 400, s.Count)
	}
}

func TestThreeNodesInALine(t *testing.T) {
	ns := []*node.Node{startNode(t, t.TempDir()), startNode(t, t.TempDir()), startNode(t, t.TempDir())}
	for _, n := range ns {
		defer n.Close()
	}
	for i := range 150 {
		_, err := ns[i%3].Put(t.Context(), message(chatScope, t0+int64(i)*1e6))
		require.NoError(t, err)
	}
	// a - b - c: a and c never talk to each other.
	require.NoError(t, ns[1].Connect(t.Context(), info(ns[0])))
	require.NoError(t, ns[1].Connect(t.Context(), info(ns[2])))
	for _, p := range []int{0, 2, 0} {
		_, err := ns[1].SyncNow(t.Context(), ns[p].Host().ID())
		require.NoError(t, err)
	}
	for _, n := range ns {
		require.Len(t, all(t, n, chatScope), 150)
		require.Equal(t, roots(ns[0]), roots(n))
	}
}

func TestRestartKeepsIdentityStoreAndRoot(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	for i := range 100 {
		_, err := n.Put(t.Context(), message(chatScope, t0+int64(i)))
		require.NoError(t, err)
	}
	id, before, msgs := n.Host().ID(), roots(n), all(t, n, chatScope)
	require.NoError(t, n.Close())

	again := startNode(t, dir, node.WithStoreOptions(node.WithVerifyOnOpen(true)))
	defer again.Close()
	require.Equal(t, id, again.Host().ID())
	require.Equal(t, before, roots(again))
	require.Equal(t, msgs, all(t, again, chatScope))
}

func TestMetricsAreExported(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := startNode(t, t.TempDir(), node.WithMetrics(reg))
	defer a.Close()
	b := startNode(t, t.TempDir())
	defer b.Close()
	_, err := b.Put(t.Context(), message(chatScope, t0))
	require.NoError(t, err)
	require.NoError(t, a.Connect(t.Context(), info(b)))
	_, err = a.SyncNow(t.Context(), b.Host().ID(), chatScope)
	require.NoError(t, err)
	got := map[string]bool{}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"storesync_store_messages", "storesync_sessions_total",
		"storesync_messages_received_total", "storesync_round_trips_total", "storesync_bytes_total"} {
		require.True(t, got[name], name)
	}
}

func TestRetentionDeletesOldMessages(t *testing.T) {
	n := startNode(t, t.TempDir(), node.WithRetention(time.Hour, 50*time.Millisecond))
	defer n.Close()
	old := message(chatScope, time.Now().Add(-2*time.Hour).UnixNano())
	fresh := message(chatScope, time.Now().UnixNano())
	_, err := n.Put(t.Context(), old, fresh)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got := all(t, n, chatScope)
		return len(got) == 1 && got[fresh.Hash()]
	}, 5*time.Second, 20*time.Millisecond)
}

func TestBootstrapPeersSyncAtStart(t *testing.T) {
	a := startNode(t, t.TempDir())
	defer a.Close()
	m := message(chatScope, t0)
	_, err := a.Put(t.Context(), m)
	require.NoError(t, err)
	b := startNode(t, t.TempDir(), node.WithPeers(info(a)))
	defer b.Close()
	require.Eventually(t, func() bool { return all(t, b, chatScope)[m.Hash()] }, 5*time.Second, 20*time.Millisecond)
}

// TestStartFillsTheSketchMemos: a node that opens a store already
// holding messages fills its trees' sketch memos in the background, so
// that its first session needing a sketch of a large range reads a few
// nodes, not the scope.
func TestStartFillsTheSketchMemos(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	var ms []reconcile.Message
	for i := range 5000 {
		ms = append(ms, message(chatScope, t0+int64(i)))
	}
	_, err := n.Put(t.Context(), ms...)
	require.NoError(t, err)
	require.NoError(t, n.Close())

	again := startNode(t, dir)
	defer again.Close()
	tree, ok := again.Store().Tree(chatScope)
	require.True(t, ok)
	require.Eventually(t, func() bool { return tree.CacheStats().CellMemos > 0 }, 10*time.Second, 20*time.Millisecond)
}
