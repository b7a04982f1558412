package node_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
)

// TestMDNSFindsPeers: two nodes with mDNS on find and connect to each
// other on their own.
func TestMDNSFindsPeers(t *testing.T) {
	tag := "storesync-test-" + t.Name()
	a := startNode(t, t.TempDir(), node.WithMDNS(tag), node.WithListenAddrs("/ip4/0.0.0.0/tcp/0"))
	defer a.Close()
	b := startNode(t, t.TempDir(), node.WithMDNS(tag), node.WithListenAddrs("/ip4/0.0.0.0/tcp/0"))
	defer b.Close()
	require.Eventually(t, func() bool {
		return len(a.Host().Network().ConnsToPeer(b.Host().ID())) > 0
	}, 15*time.Second, 100*time.Millisecond)
}
