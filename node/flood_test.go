package node_test

import (
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// pruneWatch is a GossipSub tracer that counts the PRUNEs a peer sends
// us for a topic, and the messages of ours it forwards back.
type pruneWatch struct {
	from   peer.ID
	topic  string
	prunes atomic.Int32
}

func (w *pruneWatch) RecvRPC(rpc *pubsub.RPC) {
	if rpc.From() != w.from || rpc.Control == nil {
		return
	}
	for _, p := range rpc.Control.Prune {
		if p.GetTopicID() == w.topic {
			w.prunes.Add(1)
		}
	}
}

func (*pruneWatch) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (*pruneWatch) OnClosedOutboundStream(peer.ID)                       {}
func (*pruneWatch) Join(string)                                          {}
func (*pruneWatch) Leave(string)                                         {}
func (*pruneWatch) Graft(peer.ID, string)                                {}
func (*pruneWatch) Prune(peer.ID, string)                                {}
func (*pruneWatch) ValidateMessage(*pubsub.Message)                      {}
func (*pruneWatch) DeliverMessage(*pubsub.Message)                       {}
func (*pruneWatch) RejectMessage(*pubsub.Message, string)                {}
func (*pruneWatch) DuplicateMessage(*pubsub.Message)                     {}
func (*pruneWatch) ThrottlePeer(peer.ID)                                 {}
func (*pruneWatch) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (*pruneWatch) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (*pruneWatch) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (*pruneWatch) UndeliverableMessage(*pubsub.Message)                 {}

// TestAnnouncementFlooderLosesItsMesh: a peer that publishes well-formed
// announcements of its own far above the allowed rate has them rejected
// (not merely ignored), which GossipSub's peer score, on in a node's own
// GossipSub, turns into a PRUNE: the flooder leaves the node's mesh. A
// member announcing at its interval is never pruned.
func TestAnnouncementFlooderLosesItsMesh(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	hv, err := mn.GenPeer()
	require.NoError(t, err)
	hx, err := mn.GenPeer()
	require.NoError(t, err)
	require.NoError(t, mn.LinkAll())
	g := gossip.Group{Name: "chat", Scopes: []reconcile.Scope{chatScope}}
	victim, err := node.New(t.Context(), node.WithHost(hv), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
		node.WithGroups(g), node.WithGossipOptions(gossip.WithInterval(time.Minute, 0.3)))
	require.NoError(t, err)
	defer victim.Close()
	watch := &pruneWatch{from: hv.ID(), topic: g.Topic()}
	ps, err := pubsub.NewGossipSub(t.Context(), hx, pubsub.WithRawTracer(watch))
	require.NoError(t, err)
	topic, err := ps.Join(g.Topic())
	require.NoError(t, err)
	sub, err := topic.Subscribe()
	require.NoError(t, err)
	defer sub.Cancel()
	require.NoError(t, mn.ConnectAllButSelf())
	require.Eventually(t, func() bool { return len(topic.ListPeers()) == 1 }, 10*time.Second, 20*time.Millisecond)
	ann, err := gossip.EncodeAnnouncement(g, map[reconcile.Scope]gossip.ScopeState{chatScope: {Count: 1}})
	require.NoError(t, err)

	// One announcement a second, within the allowance of six a minute's
	// burst: no prune.
	for range 3 {
		require.NoError(t, topic.Publish(t.Context(), ann))
		time.Sleep(time.Second)
	}
	require.Zero(t, watch.prunes.Load(), "an announcer within its rate keeps its mesh")

	// Then a flood.
	for range 60 {
		require.NoError(t, topic.Publish(t.Context(), ann))
		time.Sleep(20 * time.Millisecond)
	}
	require.Eventually(t, func() bool { return watch.prunes.Load() > 0 }, 10*time.Second, 50*time.Millisecond,
		"the flooder is pruned from the victim's mesh")
}
