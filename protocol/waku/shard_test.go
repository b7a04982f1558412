package waku_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/protocol/waku"
)

// TestShardIndexVectors checks autosharding against the shards js-waku
// computes for the same topics.
func TestShardIndexVectors(t *testing.T) {
	cases := []struct {
		topic     string
		numShards int
		shard     uint16
	}{
		{"/toychat/2/huilong/proto", 8, 3},
		{"/0/toychat/2/huilong/proto", 8, 3},
		{"/myapp/1/latest/proto", 8, 0},
		{"/waku/2/content/test.js", 8, 1},
		{"/statusim/1/community/cbor", 8, 4},
		{"/0/statusim/1/community/cbor", 8, 4},
		{"/app/22/sometopic/someencoding", 8, 2},
		{"/app/27/sometopic/someencoding", 8, 5},
		{"/app/20/sometopic/someencoding", 8, 7},
		{"/app/29/sometopic/someencoding", 8, 6},
		{"/app/20/sometopic/someencoding", 16, 15},
		{"/app/20/sometopic/someencoding", 2, 1},
		{"/app/20/sometopic/someencoding", 1, 0},
		{"/jswaku/1/feasibility/proto", 8, 4},
	}
	for _, c := range cases {
		got, err := waku.ShardIndex(c.topic, c.numShards)
		require.NoError(t, err, c.topic)
		require.Equal(t, c.shard, got, "%s in %d shards", c.topic, c.numShards)
	}
}

func TestAutoShardNamesTheRelayTopic(t *testing.T) {
	r, err := waku.AutoShard("/jswaku/1/feasibility/proto", 1, waku.DefaultShards)
	require.NoError(t, err)
	require.Equal(t, waku.RelayShard{Cluster: 1, Shard: 4}, r)
	require.Equal(t, "/waku/2/rs/1/4", r.PubsubTopic())
	require.Equal(t, "/waku/2/rs/1/4", r.String())

	// Only application and version choose the shard.
	a, err := waku.ShardIndex("/myapp/1/latest/proto", 8)
	require.NoError(t, err)
	b, err := waku.ShardIndex("/myapp/1/new/cbor", 8)
	require.NoError(t, err)
	require.Equal(t, a, b)
}

func TestShardIndexRejectsBadInput(t *testing.T) {
	bad := []string{
		"", " ", "myContentTopic", "myapp1mytopiccbor/", " /myapp/1/mytopic",
		"/myapp/1/mytopic", "/0/myapp/1/mytopic/cbor/extra", "myapp/1/mytopic/cbor",
		"/a/myapp/1/mytopic/cbor", "/ /myapp/1/mytopic/cbor", "/$/myapp/1/mytopic/cbor",
		"/1/myapp/1/mytopic/cbor", "/1000/myapp/1/mytopic/cbor", "/00/myapp/1/mytopic/cbor",
		"/0//1/mytopic/cbor", "/0/myapp//mytopic/cbor", "/0/myapp/1//cbor", "/0/myapp/1/mytopic/",
		"//1/mytopic/cbor", "/myapp/1/mytopic/",
	}
	for _, s := range bad {
		_, err := waku.ShardIndex(s, 8)
		require.ErrorIs(t, err, waku.ErrInvalidContentTopic, "%q", s)
	}
	for _, n := range []int{0, -1, waku.MaxShards + 1} {
		_, err := waku.ShardIndex("/myapp/1/latest/proto", n)
		require.Error(t, err, n)
	}
	_, err := waku.ShardIndex("/myapp/1/latest/proto", waku.MaxShards)
	require.NoError(t, err)
}

func TestParseContentTopic(t *testing.T) {
	c, err := waku.ParseContentTopic("/0/myapp/v1.1/my topic/cbor")
	require.NoError(t, err)
	require.Equal(t, waku.ContentTopic{WithGeneration: true, Application: "myapp", Version: "v1.1", Name: "my topic", Encoding: "cbor"}, c)
	require.Equal(t, "/0/myapp/v1.1/my topic/cbor", c.String())

	c, err = waku.ParseContentTopic("/myapp/1/mytopic/cbor")
	require.NoError(t, err)
	require.False(t, c.WithGeneration)
	require.Equal(t, "/myapp/1/mytopic/cbor", c.String())
}

func TestParsePubsubTopic(t *testing.T) {
	r, err := waku.ParsePubsubTopic("/waku/2/rs/2/2")
	require.NoError(t, err)
	require.Equal(t, waku.RelayShard{Cluster: 2, Shard: 2}, r)
	r, err = waku.ParsePubsubTopic("/waku/2/rs/65535/1023")
	require.NoError(t, err)
	require.Equal(t, waku.RelayShard{Cluster: 65535, Shard: 1023}, r)

	bad := []string{
		"", "/waku/1/rs/1/2", "/waku/2/r/1/2", "/incorrect/format", "/waku/2/rs",
		"/waku/2/rs/", "/waku/2/rs/1", "/waku/2/rs/1/", "/waku/2/rs/1/2/extra",
		"/waku/2/default-waku/proto", "/waku/2/rs/01/2", "/waku/2/rs/1/02",
		"/waku/2/rs/+1/2", "/waku/2/rs/1/-2", "/waku/2/rs/65536/2", "/waku/2/rs/1/1024",
		"/waku/2/rs/99999999999999999999/1",
	}
	for _, v := range []string{"x", "y", "$", "!", "\\", "-", "", " "} {
		bad = append(bad, "/waku/2/rs/"+v+"/1", "/waku/2/rs/1/"+v)
	}
	for _, s := range bad {
		_, err := waku.ParsePubsubTopic(s)
		require.ErrorIs(t, err, waku.ErrInvalidPubsubTopic, "%q", s)
	}
}

func TestClusterShardsKeepsTheClustersShards(t *testing.T) {
	got := waku.ClusterShards(1,
		"/waku/2/rs/1/4", "/waku/2/rs/1/2", "/waku/2/rs/1/4",
		"/waku/2/rs/2/3", "/waku/2/default-waku/proto", "/waku/2/rs/1/02")
	require.Equal(t, []uint16{2, 4}, got)
	require.Empty(t, waku.ClusterShards(1))
}
