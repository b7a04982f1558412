package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/reconcile"
)

// TestCLIRelayStoresWhatWakuRelays: `run --relay` keeps a content topic
// on its autosharded shard, stores what a Waku relay peer publishes
// there, and `query` with the content topic alone lists it.
func TestCLIRelayStoresWhatWakuRelays(t *testing.T) {
	const ct = "/jswaku/1/feasibility/proto"
	const shard = "/waku/2/rs/1/4" // ct's shard of cluster 1, 8 shards
	bin := storesyncBinary(t)
	dir := filepath.Join(t.TempDir(), "relay")
	n := startNode(t, bin, dir, "--relay", "--content-topic", ct)

	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	defer h.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ps, err := pubsub.NewGossipSub(ctx, h, node.RelayPubSubOptions()...)
	require.NoError(t, err)
	topic, err := ps.Join(shard)
	require.NoError(t, err)
	_, err = topic.Subscribe()
	require.NoError(t, err)
	ai, err := peer.AddrInfoFromString(n.addrs[0])
	require.NoError(t, err)
	require.NoError(t, h.Connect(ctx, *ai))

	query := func() []queryMessage {
		out, errOut, code := cli(t, bin, "", "query", "--data", dir, "--json", "--content-topic", ct)
		require.Equal(t, 0, code, errOut)
		var got []queryMessage
		for l := range strings.Lines(out) {
			var m queryMessage
			require.NoError(t, json.Unmarshal([]byte(l), &m), l)
			got = append(got, m)
		}
		return got
	}
	// Publish until the node stores: one published before the two
	// GossipSubs know each other is lost.
	sent := map[string]bool{}
	require.Eventually(t, func() bool {
		wm := &pb.WakuMessage{ContentTopic: ct, Payload: fmt.Appendf(nil, "relayed %d", len(sent)), Timestamp: time.Now().UnixNano()}
		b, err := wm.Marshal()
		require.NoError(t, err)
		require.NoError(t, topic.Publish(ctx, b))
		sent[reconcile.MessageHash(shard, ct, wm.Payload, nil, wm.Timestamp).String()] = true
		return len(query()) > 0
	}, 15*time.Second, 200*time.Millisecond, "the node stores a relayed message")
	for _, m := range query() {
		require.True(t, sent[m.Hash], "stored under its Waku hash on %s: %s", shard, m.Payload)
	}
	n.stop(t)
}
