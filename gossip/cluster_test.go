package gossip_test

import (
	"crypto/rand"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// cluster is n nodes on an in-process network, every node on every other.
type cluster struct {
	mn    mocknet.Mocknet
	nodes []*node.Node
}

// newCluster starts n nodes; groupsOf(i) gives node i's groups.
func newCluster(t testing.TB, n int, interval time.Duration, groupsOf func(i int) []gossip.Group, opts ...gossip.Option) *cluster {
	t.Helper()
	return newClusterWith(t, n, interval, groupsOf, nil, opts...)
}

// newClusterWith is newCluster with more node options per node.
func newClusterWith(t testing.TB, n int, interval time.Duration, groupsOf func(i int) []gossip.Group,
	extra func(i int, id peer.ID) []node.Option, opts ...gossip.Option) *cluster {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	c := &cluster{mn: mn}
	for range n {
		_, err := mn.GenPeer()
		require.NoError(t, err)
	}
	require.NoError(t, mn.LinkAll())
	// Nodes first, connections second: GossipSub opens its streams when a
	// connection comes up, so hosts connected before GossipSub runs on
	// both ends would hear each other one way only.
	for i, h := range mn.Hosts() {
		gopts := append([]gossip.Option{gossip.WithInterval(interval, 0.3), gossip.WithStartup(3, interval/4)}, opts...)
		nopts := []node.Option{node.WithHost(h), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
			node.WithGroups(groupsOf(i)...), node.WithGossipOptions(gopts...)}
		if extra != nil {
			nopts = append(nopts, extra(i, h.ID())...)
		}
		nd, err := node.New(t.Context(), nopts...)
		require.NoError(t, err)
		t.Cleanup(func() { nd.Close() })
		c.nodes = append(c.nodes, nd)
	}
	require.NoError(t, mn.ConnectAllButSelf())
	return c
}

func message(sc reconcile.Scope, ts int64) reconcile.Message {
	p := make([]byte, 24)
	_, _ = rand.Read(p)
	return reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: p, Timestamp: ts}
}

func scope(name string) reconcile.Scope {
	return reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/" + name + "/1/chat/proto"}
}

// root returns a node's root of a scope, or false when it does not keep it.
func root(n *node.Node, sc reconcile.Scope) (reconcile.Fingerprint, uint64, bool) {
	st, ok := n.Store().Stats(sc)
	return st.Root, st.Count, ok
}

// converged reports whether every node has the same root for sc.
func (c *cluster) converged(sc reconcile.Scope) bool {
	first, _, _ := root(c.nodes[0], sc)
	for _, n := range c.nodes[1:] {
		if r, _, _ := root(n, sc); r != first {
			return false
		}
	}
	return true
}

// t0 is in December 1999: before the clock of a synctest bubble starts
// (2000-01-01), so that no message of these tests is timestamped ahead of
// the clock that checks it, in a bubble or out of one.
const t0 = int64(946_000_000_000_000_000)

func TestGroupSpreadsMessages(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		chat := scope("chat")
		g := gossip.Group{Name: "chat", Scopes: []reconcile.Scope{chat}}
		c := newCluster(t, 5, 300*time.Millisecond, func(int) []gossip.Group { return []gossip.Group{g} })
		for i := range 20 {
			_, err := c.nodes[i%5].Put(t.Context(), message(chat, t0+int64(i)))
			require.NoError(t, err)
		}
		require.Eventually(t, func() bool {
			_, n, _ := root(c.nodes[0], chat)
			return n == 20 && c.converged(chat)
		}, 10*time.Second, 50*time.Millisecond)
	})
}

// TestGroupsAreScoped: a node in group X only never receives the scopes
// of group Y, even where nodes in both groups hold Y's messages.
func TestGroupsAreScoped(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		x, y := scope("x"), scope("y")
		gx := gossip.Group{Name: "x", Scopes: []reconcile.Scope{x}}
		gy := gossip.Group{Name: "y", Scopes: []reconcile.Scope{y}}
		// Nodes 0-1: X only; 2-3: both; 4-5: Y only.
		c := newCluster(t, 6, 300*time.Millisecond, func(i int) []gossip.Group {
			switch {
			case i < 2:
				return []gossip.Group{gx}
			case i < 4:
				return []gossip.Group{gx, gy}
			}
			return []gossip.Group{gy}
		})
		for i := range 12 {
			_, err := c.nodes[2+i%4].Put(t.Context(), message(y, t0+int64(i)))
			require.NoError(t, err)
			_, err = c.nodes[i%4].Put(t.Context(), message(x, t0+int64(i)))
			require.NoError(t, err)
		}
		require.Eventually(t, func() bool {
			for i, n := range c.nodes {
				if _, cnt, _ := root(n, x); i < 4 && cnt != 12 {
					return false
				}
				if _, cnt, _ := root(n, y); i >= 2 && cnt != 12 {
					return false
				}
			}
			return true
		}, 10*time.Second, 50*time.Millisecond)
		// Let more intervals pass: X-only nodes must still not keep Y.
		time.Sleep(time.Second)
		for _, n := range c.nodes[:2] {
			_, _, kept := root(n, y)
			require.False(t, kept, "an X-only node keeps Y")
			require.Empty(t, n.Store().Scopes()[1:])
		}
	})
}

// TestInSyncCostsOnlyAnnouncements: while roots are equal, members keep
// announcing and no session starts.
func TestInSyncCostsOnlyAnnouncements(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		chat := scope("chat")
		g := gossip.Group{Name: "chat", Scopes: []reconcile.Scope{chat}}
		c := newCluster(t, 5, 200*time.Millisecond, func(int) []gossip.Group { return []gossip.Group{g} },
			gossip.WithStartup(0, 0))
		for _, n := range c.nodes {
			for i := range 10 {
				_, err := n.Store().Put(t.Context(), message(chat, t0+int64(i)))
				require.NoError(t, err)
			}
		}
		// The same messages everywhere would still differ (random payloads);
		// make them equal by putting node 0's messages everywhere instead.
		for _, n := range c.nodes[1:] {
			_, err := n.Store().DeleteBefore(t.Context(), chat, t0+100)
			require.NoError(t, err)
		}
		page, err := c.nodes[0].Query(t.Context(), node.Query{Scope: chat})
		require.NoError(t, err)
		for _, n := range c.nodes[1:] {
			_, err := n.Store().Put(t.Context(), page.Messages...)
			require.NoError(t, err)
		}
		require.True(t, c.converged(chat))
		before := counters(t, c)
		time.Sleep(2 * time.Second) // about ten intervals
		after := counters(t, c)
		for i := range c.nodes {
			require.Greater(t, after[i].Announcements, before[i].Announcements+5, "node %d stopped announcing", i)
			require.Equal(t, sum(before[i].Sessions), sum(after[i].Sessions), "node %d started sessions while in sync", i)
		}
	})
}

func counters(t testing.TB, c *cluster) []gossip.Counters {
	var out []gossip.Counters
	for _, n := range c.nodes {
		cs, err := n.Gossip().Counters(t.Context())
		require.NoError(t, err)
		out = append(out, cs)
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
