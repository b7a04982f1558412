package node_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// relayScope is kept by the relay tests, on js-waku's default shard of
// its content topic.
var relayScope = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/4", ContentTopic: "/jswaku/1/feasibility/proto"}

// wakuPeer is a plain Waku relay peer: a libp2p host with GossipSub set
// up as Waku relay, on one pubsub topic.
type wakuPeer struct {
	h     host.Host
	topic *pubsub.Topic
}

func newWakuPeer(t *testing.T, pubsubTopic string) *wakuPeer {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h, node.RelayPubSubOptions()...)
	require.NoError(t, err)
	topic, err := ps.Join(pubsubTopic)
	require.NoError(t, err)
	_, err = topic.Subscribe()
	require.NoError(t, err)
	return &wakuPeer{h: h, topic: topic}
}

// meet connects the peer to n and waits until n stores what the peer
// publishes (a message published before both GossipSubs know each other
// is lost), and returns the hashes of the probes it published to find
// out.
func (w *wakuPeer) meet(t *testing.T, n *node.Node, sc reconcile.Scope) []reconcile.Hash {
	t.Helper()
	require.NoError(t, w.h.Connect(t.Context(), info(n)))
	require.Eventually(t, func() bool { return slices.Contains(w.topic.ListPeers(), n.Host().ID()) },
		10*time.Second, 20*time.Millisecond, "the node joins the relay topic")
	var probes []reconcile.Hash
	require.Eventually(t, func() bool {
		m := &pb.WakuMessage{ContentTopic: sc.ContentTopic, Payload: []byte("probe"), Timestamp: time.Now().UnixNano()}
		w.publish(t, m)
		probes = append(probes, reconcile.MessageHash(sc.PubsubTopic, m.ContentTopic, m.Payload, m.Meta, m.Timestamp))
		return len(all(t, n, sc)) > 0
	}, 10*time.Second, 100*time.Millisecond, "the node stores a relayed probe")
	return probes
}

func (w *wakuPeer) publish(t *testing.T, wm *pb.WakuMessage) {
	t.Helper()
	b, err := wm.Marshal()
	require.NoError(t, err)
	require.NoError(t, w.topic.Publish(t.Context(), b))
}

// TestRelayStoresValidMessagesOfKeptScopes: a Waku relay peer publishes
// messages of every kind; the node stores exactly the valid, persistent,
// version 0 ones of the content topics it keeps, hashed as Waku hashes
// them.
func TestRelayStoresValidMessagesOfKeptScopes(t *testing.T) {
	n := startNode(t, t.TempDir(), node.WithScopes(relayScope), node.WithRelay())
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	w := newWakuPeer(t, relayScope.PubsubTopic)
	probes := w.meet(t, n, relayScope)

	now := time.Now().UnixNano()
	wm := func(i int) *pb.WakuMessage {
		return &pb.WakuMessage{ContentTopic: relayScope.ContentTopic, Payload: []byte{byte(i), 1, 2},
			Timestamp: now - int64(i)*int64(time.Millisecond)}
	}
	var want []reconcile.Hash
	for i := range 20 {
		m := wm(i)
		if i%5 == 0 {
			m.Meta = []byte("meta")
		}
		w.publish(t, m)
		want = append(want, reconcile.MessageHash(relayScope.PubsubTopic, m.ContentTopic, m.Payload, m.Meta, m.Timestamp))
	}
	skipped := []*pb.WakuMessage{
		{ContentTopic: relayScope.ContentTopic, Payload: []byte("ephemeral"), Timestamp: now, Ephemeral: true},
		{ContentTopic: relayScope.ContentTopic, Payload: []byte("version 1"), Timestamp: now, Version: 1},
		{ContentTopic: relayScope.ContentTopic, Payload: []byte("no timestamp")},
		{ContentTopic: "/other/1/topic/proto", Payload: []byte("not kept"), Timestamp: now},
		{ContentTopic: relayScope.ContentTopic, Payload: []byte("ahead"), Timestamp: now + int64(time.Minute)},
		{ContentTopic: relayScope.ContentTopic, Payload: []byte("stale"), Timestamp: now - int64(time.Minute)},
		{ContentTopic: relayScope.ContentTopic, Payload: bytes.Repeat([]byte{1}, reconcile.DefaultMaxMessageSize+1), Timestamp: now},
	}
	for _, m := range skipped {
		w.publish(t, m)
	}
	require.NoError(t, w.topic.Publish(t.Context(), []byte{0xff, 0xff, 0xff}), "garbage")
	// A last valid one: once it is stored, everything before it was seen.
	last := wm(99)
	w.publish(t, last)
	want = append(want, reconcile.MessageHash(relayScope.PubsubTopic, last.ContentTopic, last.Payload, last.Meta, last.Timestamp))

	require.Eventually(t, func() bool {
		got := all(t, n, relayScope)
		for _, h := range want {
			if !got[h] {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "the relayed messages are stored under their Waku hashes")
	time.Sleep(100 * time.Millisecond)
	for h := range all(t, n, relayScope) {
		require.True(t, slices.Contains(want, h) || slices.Contains(probes, h), "only valid relayed messages are stored")
	}
}

// TestSyncGroupsShareTheRelayGossipSub: two relay nodes in a sync group
// converge over the GossipSub they run as Waku relay, whose messages
// carry no author: the announcements are signed inside.
func TestSyncGroupsShareTheRelayGossipSub(t *testing.T) {
	grp := gossip.Group{Name: "relay-group", Scopes: []reconcile.Scope{relayScope}}
	// No start-up sessions: b learns of a's messages from announcements.
	gopts := node.WithGossipOptions(gossip.WithInterval(200*time.Millisecond, 0.3), gossip.WithStartup(0, 0))
	a := startNode(t, t.TempDir(), node.WithRelay(), node.WithGroups(grp), gopts)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	b := startNode(t, t.TempDir(), node.WithRelay(), node.WithGroups(grp), gopts)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	require.NoError(t, b.Connect(t.Context(), info(a)))
	// Let the GossipSubs meet; what a puts then reaches b only through
	// a's announcements.
	time.Sleep(time.Second)
	var msgs []reconcile.Message
	for i := range 50 {
		msgs = append(msgs, message(relayScope, int64(1e9+i)))
	}
	_, err := a.Put(t.Context(), msgs...)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(all(t, b, relayScope)) == len(msgs) },
		20*time.Second, 50*time.Millisecond, "b catches up through the group's announcements")
}

// TestRelayLeavesTheCallersGossipSub: a relay node on a GossipSub of the
// caller's leaves its topics when it closes, so that the caller may join
// them again.
func TestRelayLeavesTheCallersGossipSub(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	defer h.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ps, err := pubsub.NewGossipSub(ctx, h, node.RelayPubSubOptions()...)
	require.NoError(t, err)
	n, err := node.New(t.Context(), node.WithHost(h), node.WithPubSub(ps), node.WithDataDir(t.TempDir()),
		node.WithScopes(relayScope), node.WithRelay())
	require.NoError(t, err)
	require.Contains(t, ps.GetTopics(), relayScope.PubsubTopic)
	require.NoError(t, n.Close())
	require.Eventually(t, func() bool { return !slices.Contains(ps.GetTopics(), relayScope.PubsubTopic) },
		5*time.Second, 10*time.Millisecond, "the node leaves the relay topic")
	require.NoError(t, ps.RegisterTopicValidator(relayScope.PubsubTopic,
		func(context.Context, peer.ID, *pubsub.Message) bool { return true }), "the topic's validator is gone")
}

// TestWakuEdgeMetrics: relayed messages are counted by outcome and Store
// v3 queries by status, with the entries they returned.
func TestWakuEdgeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	n := startNode(t, t.TempDir(), node.WithScopes(relayScope), node.WithRelay(), node.WithWakuStore(), node.WithMetrics(reg))
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	w := newWakuPeer(t, relayScope.PubsubTopic)
	probes := w.meet(t, n, relayScope)
	now := time.Now().UnixNano()
	w.publish(t, &pb.WakuMessage{ContentTopic: relayScope.ContentTopic, Payload: []byte("e"), Timestamp: now, Ephemeral: true})
	require.NoError(t, w.topic.Publish(t.Context(), []byte{0xff, 0xff}))
	last := &pb.WakuMessage{ContentTopic: relayScope.ContentTopic, Payload: []byte("last"), Timestamp: now}
	w.publish(t, last)
	require.Eventually(t, func() bool {
		return all(t, n, relayScope)[reconcile.MessageHash(relayScope.PubsubTopic, last.ContentTopic, last.Payload, nil, now)]
	}, 10*time.Second, 20*time.Millisecond)

	c, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Connect(t.Context(), info(n)))
	resp, err := protocol.QueryWakuStore(t.Context(), c, n.Host().ID(), &pb.StoreQueryRequest{RequestId: "ok",
		PubsubTopic: relayScope.PubsubTopic, ContentTopics: []string{relayScope.ContentTopic}, PaginationLimit: 100})
	require.NoError(t, err)
	require.EqualValues(t, protocol.StatusOK, resp.StatusCode)
	resp, err = protocol.QueryWakuStore(t.Context(), c, n.Host().ID(), &pb.StoreQueryRequest{RequestId: "bad", PubsubTopic: "/x"})
	require.NoError(t, err)
	require.EqualValues(t, protocol.StatusBadRequest, resp.StatusCode)

	stored := len(all(t, n, relayScope))
	require.GreaterOrEqual(t, stored, 2)
	require.LessOrEqual(t, stored, len(probes)+1)
	// A Put is counted once it has returned: just after its messages
	// can be read.
	require.Eventually(t, func() bool {
		return gather(t, reg)["storesync_relay_messages_total{outcome=stored,pubsub_topic=/waku/2/rs/1/4}"] == float64(stored)
	}, 5*time.Second, 10*time.Millisecond, "every stored relayed message counted")
	values := gather(t, reg)
	require.Equal(t, 1.0, values["storesync_relay_messages_total{outcome=skipped,pubsub_topic=/waku/2/rs/1/4}"])
	require.Equal(t, 1.0, values["storesync_relay_messages_total{outcome=refused,pubsub_topic=/waku/2/rs/1/4}"])
	require.Equal(t, 1.0, values["storesync_waku_store_queries_total{status=200}"])
	require.Equal(t, 1.0, values["storesync_waku_store_queries_total{status=400}"])
	require.Equal(t, float64(stored), values["storesync_waku_store_entries_total{status=200}"])
}

// gather returns every sample of reg's counters and gauges, named
// "name{label=value,...}" with labels in order.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}
