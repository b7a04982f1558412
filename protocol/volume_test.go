package protocol_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-msgio/protoio"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// downloadScope streams the whole of sc from server as a bare client
// does, reading every batch and storing nothing, and returns the
// messages it was sent and the header's error code (OK when none).
func downloadScope(t *testing.T, h host.Host, server *streamNode, sc reconcile.Scope) (int, pb.Code) {
	t.Helper()
	s, err := h.NewStream(t.Context(), server.h.ID(), protocol.CatchUpID)
	require.NoError(t, err)
	defer s.Reset()
	id := sc.ID()
	require.NoError(t, protoio.NewDelimitedWriter(s).WriteMsg(&pb.CatchUpRequest{Scope: id[:], AcceptBare: true}))
	r := protoio.NewDelimitedReader(s, 2<<20)
	var hd pb.CatchUpHeader
	require.NoError(t, r.ReadMsg(&hd))
	if hd.Error != nil {
		return 0, hd.Error.Code
	}
	n := 0
	for {
		var b pb.CatchUpBatch
		require.NoError(t, r.ReadMsg(&b))
		require.Nil(t, b.Error)
		require.Empty(t, b.Zstd, "no zstd was asked for")
		if b.Batch != nil {
			n += len(b.Batch.Messages)
		}
		if b.Done {
			return n, pb.Code_OK
		}
	}
}

// fetchCode asks server for the messages with keys of sc on a fetch
// stream of h and returns the response's error code (OK when none) and
// how many messages came.
func fetchCode(t *testing.T, h host.Host, server *streamNode, sc reconcile.Scope, keys []reconcile.Key) (int, pb.Code) {
	t.Helper()
	// The server may not yet have ended the handler of this peer's last
	// stream, which counts against the peer's session slots: such a
	// refusal says nothing about the volume, so the fetch is tried again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, code := fetchOnce(t, h, server, sc, keys)
		if code != pb.Code_TOO_MANY_SESSIONS || time.Now().After(deadline) {
			return n, code
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fetchOnce is one fetch of fetchCode.
func fetchOnce(t *testing.T, h host.Host, server *streamNode, sc reconcile.Scope, keys []reconcile.Key) (int, pb.Code) {
	t.Helper()
	s, err := h.NewStream(t.Context(), server.h.ID(), protocol.FetchID)
	require.NoError(t, err)
	defer s.Reset()
	id := sc.ID()
	require.NoError(t, protoio.NewDelimitedWriter(s).WriteMsg(&pb.FetchRequest{Scope: id[:], Keys: reconcile.AppendKeys(nil, keys)}))
	var resp pb.FetchResponse
	require.NoError(t, protoio.NewDelimitedReader(s, 2<<20).ReadMsg(&resp))
	if resp.Error != nil {
		return 0, resp.Error.Code
	}
	return len(resp.Batch.GetMessages()), pb.Code_OK
}

// TestRepeatedDownloadsOfAScopeAreRefused: a peer may stream a scope
// about as often as the volume bound allows (here once over, plus a
// floor of 10,000 messages), then gets BUSY for catch-up and fetch
// alike, while another peer is still served in full.
func TestRepeatedDownloadsOfAScopeAreRefused(t *testing.T) {
	server := newStreamNode(t, []reconcile.Scope{chat}, protocol.WithCatchUpVolume(1, 10_000, time.Hour))
	msgs := fillScope(t, chat, 12_000, server.node)
	greedy := newHost(t)
	connect(t, greedy, server.h)
	// The bound is 12,000 + 10,000: the first two downloads start below
	// it, the third finds 24,000 sent.
	for i := range 2 {
		n, code := downloadScope(t, greedy, server, chat)
		require.Equal(t, pb.Code_OK, code, "download %d", i+1)
		require.Equal(t, 12_000, n)
	}
	_, code := downloadScope(t, greedy, server, chat)
	require.Equal(t, pb.Code_BUSY, code, "a third download in the hour")
	keys := make([]reconcile.Key, 100)
	for i := range keys {
		keys[i] = msgs[i].Key()
	}
	_, code = fetchCode(t, greedy, server, chat, keys)
	require.Equal(t, pb.Code_BUSY, code, "nor may it fetch the scope instead")

	other := newStreamNode(t, []reconcile.Scope{chat})
	connect(t, other.h, server.h)
	rep, err := other.svc.Sync(t.Context(), server.h.ID(), chat)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	require.Equal(t, 12_000, rep.Scopes[0].Streamed, "another peer is served in full")
	n, code := fetchCode(t, other.h, server, chat, keys)
	require.Equal(t, pb.Code_OK, code)
	require.Equal(t, 100, n)
}

// countingStore is a streamStore that tells its scopes' counts
// (protocol.ScopeCounter) and counts the calls of Set.
type countingStore struct {
	*streamStore
	sets atomic.Int64
}

func (c *countingStore) Set(sc reconcile.Scope) (reconcile.Set, bool) {
	c.sets.Add(1)
	return c.streamStore.Set(sc)
}

func (c *countingStore) ScopeCount(sc reconcile.Scope) (uint64, bool) {
	t, ok := c.trees[sc]
	if !ok {
		return 0, false
	}
	return t.Root().Count, true
}

// TestFetchVolumeUsesTheStoresCount: over a store that tells its counts,
// a fetch is checked against the volume without reading the scope's tree
// (which a node's store would first bring up to date), and is refused
// with BUSY past the bound like a catch-up.
func TestFetchVolumeUsesTheStoresCount(t *testing.T) {
	st := &countingStore{streamStore: newStreamStore(t, chat)}
	h := newHost(t)
	svc, err := protocol.New(h, st, protocol.WithCatchUpVolume(1, 0, time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	server := &streamNode{node: &node{h: h, svc: svc, store: st.memStore}, ss: st.streamStore}
	msgs := fillScope(t, chat, 1000, server.node)
	keys := make([]reconcile.Key, 1000)
	for i := range keys {
		keys[i] = msgs[i].Key()
	}
	greedy := newHost(t)
	connect(t, greedy, server.h)
	before := st.sets.Load()
	// The first fetch finds no debt; the second a debt of the whole
	// scope, decayed a little below the bound; the third one above it.
	for i := range 2 {
		n, code := fetchCode(t, greedy, server, chat, keys)
		require.Equal(t, pb.Code_OK, code, "fetch %d", i+1)
		require.Equal(t, 1000, n)
	}
	_, code := fetchCode(t, greedy, server, chat, keys[:1])
	require.Equal(t, pb.Code_BUSY, code)
	require.Equal(t, before, st.sets.Load(), "fetches did not read the tree")
}
