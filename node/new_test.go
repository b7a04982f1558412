package node_test

import (
	"net"
	"strconv"
	"strings"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// TestNewReturnsErrors checks that every way New can fail comes back as
// an error, never a panic, and leaves nothing open behind: the data
// folder can be opened again at once.
func TestNewReturnsErrors(t *testing.T) {
	cases := map[string][]node.Option{
		"no datastore":        {node.WithScopes(chatScope)},
		"port out of range":   {node.WithListenAddrs("/ip4/127.0.0.1/tcp/99999")},
		"not a multiaddr":     {node.WithListenAddrs("127.0.0.1:4001")},
		"address not local":   {node.WithListenAddrs("/ip4/192.0.2.1/tcp/0")},
		"scope without topic": {node.WithScopes(reconcile.Scope{PubsubTopic: chatScope.PubsubTopic})},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if name != "no datastore" {
				opts = append([]node.Option{node.WithDataDir(dir)}, opts...)
			}
			var n *node.Node
			var err error
			require.NotPanics(t, func() { n, err = node.New(t.Context(), opts...) })
			require.Error(t, err)
			require.Nil(t, n)
			if name != "no datastore" {
				// The failed New closed its LevelDB: a node opens the
				// same folder now.
				ok := startNode(t, dir)
				require.NoError(t, ok.Close())
			}
		})
	}
}

// TestNewOnTakenPortFails binds a port without SO_REUSEPORT, so that
// libp2p cannot listen on it, and expects an error from New.
func TestNewOnTakenPortFails(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	d := dssync.MutexWrap(ds.NewMapDatastore())
	var n *node.Node
	require.NotPanics(t, func() {
		n, err = node.New(t.Context(), node.WithDatastore(d),
			node.WithListenAddrs("/ip4/127.0.0.1/tcp/"+strconv.Itoa(port)))
	})
	require.Error(t, err)
	require.Nil(t, n)
}

// TestNewOnAnotherNodesPortFails: a second node asked to listen on the
// port of a running one fails with a clear error, although libp2p's
// SO_REUSEPORT listeners would let both bind it and share its
// connections; the first node goes on serving.
func TestNewOnAnotherNodesPortFails(t *testing.T) {
	first, err := node.New(t.Context(), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
		node.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	defer first.Close()
	addr := first.Host().Addrs()[0].String()
	second, err := node.New(t.Context(), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
		node.WithListenAddrs(addr))
	require.ErrorContains(t, err, "already in use")
	require.Nil(t, second)
	c, err := net.Dial("tcp", strings.TrimPrefix(strings.ReplaceAll(addr, "/tcp/", ":"), "/ip4/"))
	require.NoError(t, err)
	_ = c.Close()
}
