package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

func TestRunFlagsLetWakuClientsIn(t *testing.T) {
	f, fs, err := parseRunFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, edgeFlags{mplex: true, clusterID: 1, shards: 8, store: true}, f.edge)
	_, err = f.options(fs)
	require.NoError(t, err)
	require.Empty(t, f.listen, "the defaults are applied to the node, not to the flag")

	f, fs, err = parseRunFlags([]string{"--mplex=false", "--cluster-id", "0", "--shards", "1024",
		"--listen", "/ip4/127.0.0.1/tcp/0/ws", "--waku-store=false"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, edgeFlags{mplex: false, clusterID: 0, shards: 1024}, f.edge)
	require.Equal(t, stringList{"/ip4/127.0.0.1/tcp/0/ws"}, f.listen)
	_, err = f.options(fs)
	require.NoError(t, err)
}

func TestRunFlagsRejectBadWakuSettings(t *testing.T) {
	for _, args := range [][]string{
		{"--shards", "0"}, {"--shards", "1025"}, {"--shards", "-1"},
		{"--cluster-id", "65536"},
		{"--relay", "--content-topic", "no-slashes"},
	} {
		f, fs, err := parseRunFlags(args, io.Discard)
		require.NoError(t, err, args)
		_, err = f.options(fs)
		require.ErrorIs(t, err, errUsage, args)
	}
	for _, args := range [][]string{{"--cluster-id", "-1"}, {"--cluster-id", "one"}, {"--shards", "x"}, {"--mplex=maybe"}} {
		_, _, err := parseRunFlags(args, io.Discard)
		require.ErrorIs(t, err, errUsage, args)
	}
}

// TestRunRelayAutoshardsContentTopics: with --relay and no --pubsub-topic,
// each content topic is kept on its autosharded shard of the cluster, in
// groups too; an explicit --pubsub-topic still wins, and without --relay
// the default pubsub topic stays.
func TestRunRelayAutoshardsContentTopics(t *testing.T) {
	scopesOf := func(args ...string) []reconcile.Scope {
		t.Helper()
		f, fs, err := parseRunFlags(args, io.Discard)
		require.NoError(t, err)
		_, err = f.options(fs)
		require.NoError(t, err)
		scopes, groups, err := f.topics.build(f.topicOf)
		require.NoError(t, err)
		for _, g := range groups {
			scopes = append(scopes, g.Scopes...)
		}
		return scopes
	}
	const ct = "/jswaku/1/feasibility/proto"
	require.Equal(t, []reconcile.Scope{{PubsubTopic: "/waku/2/rs/1/4", ContentTopic: ct}, {PubsubTopic: "/waku/2/rs/1/4", ContentTopic: ct}},
		scopesOf("--relay", "--content-topic", ct, "--group", "g", "--content-topic", ct))
	require.Equal(t, []reconcile.Scope{{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: ct}},
		scopesOf("--relay", "--pubsub-topic", "/waku/2/rs/1/0", "--content-topic", ct))
	require.Equal(t, []reconcile.Scope{{PubsubTopic: defaultPubsubTopic, ContentTopic: ct}},
		scopesOf("--content-topic", ct))
}
