package reconcile_test

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/reconcile"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// TestMessageHashVectors checks the hash against the test vectors that
// RFC 14/WAKU2-MESSAGE publishes, so that hashes agree with Waku nodes.
func TestMessageHashVectors(t *testing.T) {
	const (
		pubsub  = "/waku/2/default-waku/proto"
		content = "/waku/2/default-content/proto"
		ts      = 0x175789bfa23f8400
	)
	payload := unhex(t, "010203045445535405060708")
	meta12 := unhex(t, "73757065722d736563726574")
	meta64 := make([]byte, 64)
	for i := range meta64 {
		meta64[i] = byte(i)
	}
	for _, tc := range []struct {
		name          string
		payload, meta []byte
		want          string
	}{
		{"meta of 12 bytes", payload, meta12, "64cce733fed134e83da02b02c6f689814872b1a0ac97ea56b76095c3c72bfe05"},
		{"meta of 64 bytes", payload, meta64, "7158b6498753313368b9af8f6e0a0a05104f68f972981da42a43bc53fb0c1b27"},
		{"meta absent", payload, nil, "a2554498b31f5bcdfcbf7fa58ad1c2d45f0254f3f8110a85588ec3cf10720fd8"},
		{"empty payload", nil, meta12, "483ea950cb63f9b9d6926b262bb36194d3f40a0463ce8446228350bd44e96de4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := reconcile.Message{PubsubTopic: pubsub, ContentTopic: content, Payload: tc.payload, Meta: tc.meta, Timestamp: ts}
			require.Equal(t, tc.want, m.Hash().String())
			h, err := reconcile.ParseHash(tc.want)
			require.NoError(t, err)
			require.Equal(t, h, m.Key().Hash)
			require.EqualValues(t, ts, m.Key().TS)
		})
	}
}

func TestMessageRoundTripsThroughWire(t *testing.T) {
	m := reconcile.Message{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/app/1/chat/proto",
		Payload: []byte("hello"), Meta: []byte{1}, Timestamp: 1_700_000_000_000_000_000}
	b, err := m.ToPB().Marshal()
	require.NoError(t, err)
	var back reconcile.Message
	require.NoError(t, reconcile.UnmarshalMessage(b, &back))
	require.Equal(t, m.Hash(), back.Hash())
	require.NoError(t, back.Validate())
}

func TestMessageValidate(t *testing.T) {
	ok := reconcile.Message{PubsubTopic: "p", ContentTopic: "c", Timestamp: 1}
	require.NoError(t, ok.Validate())
	bad := ok
	bad.Timestamp = 0
	require.ErrorIs(t, bad.Validate(), reconcile.ErrBadTimestamp)
	bad.Timestamp = -5
	require.ErrorIs(t, bad.Validate(), reconcile.ErrBadTimestamp)
	bad = ok
	bad.ContentTopic = ""
	require.Error(t, bad.Validate())
}

func TestOpeningRange(t *testing.T) {
	set := reconcile.NewSliceSet([]reconcile.Key{{TS: 5, Hash: reconcile.Hash{1}}, {TS: 9, Hash: reconcile.Hash{2}}})
	for _, r := range [][2]reconcile.Key{
		{{}, reconcile.End},
		{reconcile.TimeBound(3), reconcile.TimeBound(1 << 40)},
		{{TS: 7, Hash: reconcile.Hash{0xab, 0xcd}}, reconcile.End},
	} {
		s, err := reconcile.NewSession(set, r[0], r[1], reconcile.DefaultParams())
		require.NoError(t, err)
		first, err := s.Start(t.Context())
		require.NoError(t, err)
		require.Len(t, first, 1)
		lo, hi, err := reconcile.OpeningRange(first[0])
		require.NoError(t, err)
		require.Equal(t, r[0], lo)
		require.Equal(t, r[1], hi)
	}
	_, _, err := reconcile.OpeningRange(&pb.ReconcileFrame{})
	require.Error(t, err)
}
