package gossip_test

import (
	"context"
	"io"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// onBus puts every node of a cluster on the bus.
func onBus(bus *memBus) func(int, peer.ID) []node.Option {
	return func(_ int, id peer.ID) []node.Option { return []node.Option{node.WithGossipNetwork(bus.network(id))} }
}

// hasScopes reports whether an announcement carries scope states (as
// opposed to recent hashes only).
func hasScopes(data []byte) bool {
	var a pb.Announcement
	return a.Unmarshal(data) == nil && len(a.Roots) > 0
}

// TestIdleTrigger: with every announcement lost, a scope in which
// nothing arrives for the idle time is synced with a random member.
func TestIdleTrigger(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		chat := scope("chat")
		g := gossip.Group{Name: "chat", Scopes: []reconcile.Scope{chat}}
		bus := newMemBus(func(peer.ID, []byte) bool { return true })
		c := newClusterWith(t, 2, 100*time.Millisecond, func(int) []gossip.Group { return []gossip.Group{g} },
			onBus(bus), gossip.WithStartup(0, 0), gossip.WithIdleSync(300*time.Millisecond))
		m := message(chat, t0)
		_, err := c.nodes[1].Put(t.Context(), m)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return c.converged(chat) }, 5*time.Second, 20*time.Millisecond)
		// Either node's idle sync settles it (sessions go both ways).
		idle := 0
		for _, cs := range counters(t, c) {
			idle += cs.Sessions[gossip.TriggerIdle]
			require.Zero(t, cs.Sessions[gossip.TriggerAnnouncement])
		}
		require.Positive(t, idle)
	})
}

// TestRecentAnnouncements: with root announcements lost, messages put
// through the API still reach the members, by hash.
func TestRecentAnnouncements(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		chat := scope("chat")
		g := gossip.Group{Name: "chat", Scopes: []reconcile.Scope{chat}}
		bus := newMemBus(func(_ peer.ID, data []byte) bool { return hasScopes(data) })
		c := newClusterWith(t, 4, time.Hour, func(int) []gossip.Group { return []gossip.Group{g} },
			onBus(bus), gossip.WithStartup(0, 0), gossip.WithRecent(64, 50*time.Millisecond))
		for i := range 6 {
			_, err := c.nodes[0].Put(t.Context(), message(chat, t0+int64(i)))
			require.NoError(t, err)
		}
		require.Eventually(t, func() bool {
			_, n, _ := root(c.nodes[3], chat)
			return n == 6 && c.converged(chat)
		}, 5*time.Second, 20*time.Millisecond)
		cs, err := c.nodes[3].Gossip().Counters(t.Context())
		require.NoError(t, err)
		require.Positive(t, cs.Sessions[gossip.TriggerRecent])
		require.Zero(t, cs.Sessions[gossip.TriggerAnnouncement])
	})
}

// TestLossyTopicStillConverges: with half the announcements lost, a group
// still converges.
func TestLossyTopicStillConverges(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		chat := scope("chat")
		g := gossip.Group{Name: "chat", Scopes: []reconcile.Scope{chat}}
		var n int
		bus := newMemBus(func(peer.ID, []byte) bool { n++; return n%2 == 0 })
		c := newClusterWith(t, 6, 150*time.Millisecond, func(int) []gossip.Group { return []gossip.Group{g} }, onBus(bus))
		for i := range 30 {
			_, err := c.nodes[i%6].Put(t.Context(), message(chat, t0+int64(i)))
			require.NoError(t, err)
		}
		require.Eventually(t, func() bool {
			_, cnt, _ := root(c.nodes[0], chat)
			return cnt == 30 && c.converged(chat)
		}, 10*time.Second, 20*time.Millisecond)
	})
}

// TestPrivateGroup: an outsider that joins a private group's topic and
// announces gets nothing and gives nothing: its announcements are
// rejected and its sessions refused.
func TestPrivateGroup(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		chat := scope("chat")
		var ids []peer.ID
		c := newClusterWith(t, 4, 150*time.Millisecond, func(int) []gossip.Group { return nil }, nil)
		for _, n := range c.nodes {
			ids = append(ids, n.Host().ID())
		}
		private := gossip.Group{Name: "secret", Scopes: []reconcile.Scope{chat}, Allow: ids[:3]}
		open := gossip.Group{Name: "secret", Scopes: []reconcile.Scope{chat}}
		for i, n := range c.nodes {
			g := private
			if i == 3 {
				g = open // the outsider does not care for the allow-list
			}
			require.NoError(t, n.Join(t.Context(), g))
		}
		inside, outside := message(chat, t0), message(chat, t0+1)
		_, err := c.nodes[0].Put(t.Context(), inside)
		require.NoError(t, err)
		_, err = c.nodes[3].Put(t.Context(), outside)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			for _, n := range c.nodes[:3] {
				if _, cnt, _ := root(n, chat); cnt != 1 {
					return false
				}
			}
			return true
		}, 5*time.Second, 20*time.Millisecond)
		time.Sleep(time.Second) // several intervals
		for _, n := range c.nodes[:3] {
			has, err := n.Store().Has(t.Context(), chat, outside.Key())
			require.NoError(t, err)
			require.False(t, has, "a member took the outsider's message")
		}
		has, err := c.nodes[3].Store().Has(t.Context(), chat, inside.Key())
		require.NoError(t, err)
		require.False(t, has, "the outsider got the group's message")
		// The members do not count the outsider as one of theirs.
		st, err := c.nodes[0].Groups(t.Context())
		require.NoError(t, err)
		for _, m := range st[0].Members {
			require.NotEqual(t, ids[3], m.Peer)
		}
	})
}

// TestNonSpeakerIsRemembered: a peer in the group's topic that announces
// roots but does not speak the sync protocol is asked once, then left
// alone, however often it announces.
func TestNonSpeakerIsRemembered(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		chat := scope("chat")
		g := gossip.Group{Name: "chat", Scopes: []reconcile.Scope{chat}}
		const interval = 100 * time.Millisecond
		c := newCluster(t, 3, interval, func(int) []gossip.Group { return []gossip.Group{g} }, gossip.WithStartup(0, 0))
		h, err := c.mn.GenPeer()
		require.NoError(t, err)
		require.NoError(t, c.mn.LinkAll())
		ps, err := pubsub.NewGossipSub(t.Context(), h)
		require.NoError(t, err)
		for _, n := range c.nodes {
			_, err := c.mn.ConnectPeers(h.ID(), n.Host().ID())
			require.NoError(t, err)
		}
		topic, err := ps.Join(g.Topic())
		require.NoError(t, err)
		ann, err := gossip.EncodeAnnouncement(g, map[reconcile.Scope]gossip.ScopeState{chat: {Root: reconcile.Fingerprint{1}, Count: 1000, Newest: 1}})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			_ = topic.Publish(ctx, ann)
			time.Sleep(interval / 2)
		}
		for i, n := range c.nodes {
			cs, err := n.Gossip().Counters(t.Context())
			require.NoError(t, err)
			require.Equal(t, 1, cs.Sessions[gossip.TriggerAnnouncement], "node %d asked the non-speaker %d times", i,
				cs.Sessions[gossip.TriggerAnnouncement])
		}
	})
}

// TestSyncGroupReturnsOnClose: a SyncGroup waiting for a session with a
// member that never answers returns once the node closes, with an error,
// instead of waiting for its context.
func TestSyncGroupReturnsOnClose(t *testing.T) {
	chat := scope("chat")
	g := gossip.Group{Name: "chat", Scopes: []reconcile.Scope{chat}}
	c := newCluster(t, 2, 50*time.Millisecond, func(int) []gossip.Group { return []gossip.Group{g} },
		gossip.WithStartup(0, 0))
	// The member accepts sync streams and never answers them.
	c.nodes[1].Host().SetStreamHandler(protocol.SyncID, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s)
	})
	require.Eventually(t, func() bool {
		gs, err := c.nodes[0].Groups(t.Context())
		return err == nil && len(gs) == 1 && len(gs[0].Members) == 1
	}, 10*time.Second, 20*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := c.nodes[0].SyncGroup(context.Background(), "chat")
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the session is waiting for its answer
	require.NoError(t, c.nodes[0].Close())
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("SyncGroup still waiting after Close")
	}
	_, err := c.nodes[0].SyncGroup(t.Context(), "chat")
	require.Error(t, err, "a closed node syncs no group")
}

// TestDepartedMembersAreForgotten: a member that stops announcing (here,
// its node closed) is dropped from the others' member lists after ten
// intervals, so that a group's state does not grow with every peer that
// ever passed through.
func TestDepartedMembersAreForgotten(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		chat := scope("chat")
		g := gossip.Group{Name: "chat", Scopes: []reconcile.Scope{chat}}
		bus := newMemBus(func(peer.ID, []byte) bool { return false })
		c := newClusterWith(t, 3, 100*time.Millisecond, func(int) []gossip.Group { return []gossip.Group{g} }, onBus(bus))
		members := func() int { // that announced
			gs, err := c.nodes[0].Groups(t.Context())
			require.NoError(t, err)
			n := 0
			for _, m := range gs[0].Members {
				if !m.LastAnnouncement.IsZero() {
					n++
				}
			}
			return n
		}
		within(t, 5*time.Second, func() bool { return members() == 2 })
		require.NoError(t, c.nodes[2].Close())
		time.Sleep(5 * 100 * time.Millisecond)
		require.Equal(t, 2, members(), "a member is not forgotten after a few quiet intervals")
		within(t, 5*time.Second, func() bool { return members() == 1 })
	})
}
