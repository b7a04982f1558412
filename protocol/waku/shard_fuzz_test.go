package waku_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/protocol/waku"
)

// FuzzParseContentTopic checks that any string parses or fails without a
// panic, that what parses comes back from String unchanged, and that its
// shard is in range.
func FuzzParseContentTopic(f *testing.F) {
	for _, s := range []string{"/myapp/1/latest/proto", "/0/toychat/2/huilong/proto", "/1/a/b/c/d", "//a/b/c", "/a/b/c/d/e/f", ""} {
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		c, err := waku.ParseContentTopic(s)
		if err != nil {
			require.ErrorIs(t, err, waku.ErrInvalidContentTopic)
			_, err = waku.ShardIndex(s, n)
			require.Error(t, err)
			return
		}
		require.Equal(t, s, c.String())
		for _, f := range []string{c.Application, c.Version, c.Name, c.Encoding} {
			require.NotEmpty(t, f)
			require.NotContains(t, f, "/")
		}
		shard, err := waku.ShardIndex(s, n)
		if n < 1 || n > waku.MaxShards {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Less(t, int(shard), n)
	})
}

// FuzzParsePubsubTopic checks that any string parses or fails without a
// panic, and that what parses is the one spelling of its shard.
func FuzzParsePubsubTopic(f *testing.F) {
	for _, s := range []string{"/waku/2/rs/1/4", "/waku/2/rs/0/0", "/waku/2/rs/65535/1023", "/waku/2/rs/1/04", "/waku/2/default-waku/proto"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := waku.ParsePubsubTopic(s)
		if err != nil {
			require.ErrorIs(t, err, waku.ErrInvalidPubsubTopic)
			return
		}
		require.True(t, strings.HasPrefix(s, "/waku/2/rs/"))
		require.Equal(t, s, r.PubsubTopic())
		require.Less(t, int(r.Shard), waku.MaxShards)
		back, err := waku.ParsePubsubTopic(r.PubsubTopic())
		require.NoError(t, err)
		require.Equal(t, r, back)
	})
}
