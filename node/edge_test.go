package node_test

import (
	"net"
	"strconv"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/transport/websocket"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol/waku"
	"github.com/storesync/storesync/reconcile"
)

// shardScopes are kept on shards 4 and 2 of cluster 1, and on a pubsub
// topic that names no shard.
var shardScopes = []reconcile.Scope{
	{PubsubTopic: "/waku/2/rs/1/4", ContentTopic: "/jswaku/1/feasibility/proto"},
	{PubsubTopic: "/waku/2/rs/1/2", ContentTopic: "/app/1/chat/proto"},
	{PubsubTopic: "/waku/2/rs/1/4", ContentTopic: "/jswaku/1/other/proto"},
	{PubsubTopic: "/waku/2/rs/2/7", ContentTopic: "/app/1/chat/proto"},
	{PubsubTopic: "/waku/2/default-waku/proto", ContentTopic: "/app/1/chat/proto"},
}

// startEdgeNode starts a node listening on a websocket address only.
func startEdgeNode(t *testing.T, opts ...node.Option) *node.Node {
	t.Helper()
	opts = append([]node.Option{node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
		node.WithListenAddrs("/ip4/127.0.0.1/tcp/0/ws"), node.WithScopes(shardScopes...)}, opts...)
	n, err := node.New(t.Context(), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// mplexOnlyHost is a host like a stock js-waku: it dials websockets only
// and offers mplex alone.
func mplexOnlyHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.Transport(websocket.New),
		libp2p.Muxer(node.MplexID, node.Mplex{}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func TestMplexOnlyPeerReachesNodeOverWebsocket(t *testing.T) {
	n := startEdgeNode(t, node.WithMplex(true), node.WithWakuMetadata(1))
	h := mplexOnlyHost(t)
	require.NoError(t, h.Connect(t.Context(), peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()}))
	conns := h.Network().ConnsToPeer(n.Host().ID())
	require.Len(t, conns, 1)
	require.Equal(t, node.MplexID, string(conns[0].ConnState().StreamMultiplexer))
	_, err := conns[0].RemoteMultiaddr().ValueForProtocol(ma.P_WS)
	require.NoError(t, err, "connected over websocket")

	got, err := waku.QueryMetadata(t.Context(), h, n.Host().ID(), waku.Metadata{ClusterID: 1})
	require.NoError(t, err)
	require.Equal(t, waku.Metadata{ClusterID: 1, Shards: []uint16{2, 4}}, got)

	// The sync protocol runs over mplex too.
	_, err = n.Put(t.Context(), msg(shardScopes[0], 1, 1), msg(shardScopes[0], 2, 2))
	require.NoError(t, err)
	c, err := node.New(t.Context(), node.WithHost(h), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
		node.WithScopes(shardScopes[0]))
	require.NoError(t, err)
	defer c.Close()
	rep, err := c.SyncNow(t.Context(), n.Host().ID(), shardScopes[0])
	require.NoError(t, err)
	require.Equal(t, 2, rep.Scopes[0].Received)
}

func TestMplexOnlyPeerFailsWithoutMplex(t *testing.T) {
	n := startEdgeNode(t)
	h := mplexOnlyHost(t)
	err := h.Connect(t.Context(), peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()})
	require.ErrorContains(t, err, "stream multiplexer", "no muxer in common")
}

// TestMplexKeepsYamuxFirst: a peer that offers yamux gets it from a node
// with mplex on.
func TestMplexKeepsYamuxFirst(t *testing.T) {
	n := startEdgeNode(t, node.WithMplex(true))
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.Transport(websocket.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport), libp2p.Muxer(node.MplexID, node.Mplex{}))
	require.NoError(t, err)
	defer h.Close()
	require.NoError(t, h.Connect(t.Context(), peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()}))
	require.Equal(t, yamux.ID, string(h.Network().ConnsToPeer(n.Host().ID())[0].ConnState().StreamMultiplexer))
}

func TestWithMplexNeedsTheNodesOwnHost(t *testing.T) {
	h, err := libp2p.New(libp2p.NoListenAddrs)
	require.NoError(t, err)
	defer h.Close()
	_, err = node.New(t.Context(), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
		node.WithHost(h), node.WithMplex(true))
	require.ErrorContains(t, err, "WithMplex")
}

// TestWebsocketListenPortChecks: a websocket address on a taken port, or
// on the port of the node's TCP address, fails with a clear error.
func TestWebsocketListenPortChecks(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_, err = node.New(t.Context(), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
		node.WithListenAddrs("/ip4/127.0.0.1/tcp/"+port+"/ws"))
	require.ErrorContains(t, err, "already in use")

	free := freePort(t)
	for _, addrs := range [][]string{
		{"/ip4/127.0.0.1/tcp/" + free, "/ip4/127.0.0.1/tcp/" + free + "/ws"},
		{"/ip4/0.0.0.0/tcp/" + free, "/ip4/127.0.0.1/tcp/" + free + "/ws"},
	} {
		_, err = node.New(t.Context(), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
			node.WithListenAddrs(addrs...))
		require.ErrorContains(t, err, "ports of their own", addrs)
	}

	// Each on its own port, both work.
	n, err := node.New(t.Context(), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
		node.WithListenAddrs("/ip4/127.0.0.1/tcp/"+free, "/ip4/127.0.0.1/tcp/"+freePort(t)+"/ws"))
	require.NoError(t, err)
	require.NoError(t, n.Close())
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
