package gossip

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
)

func newTestSigner(t testing.TB, now time.Time) (*signer, peer.ID) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	s, err := newSigner(key, func() time.Time { return now })
	require.NoError(t, err)
	id, err := peer.IDFromPrivateKey(key)
	require.NoError(t, err)
	return s, id
}

// TestSignedAnnouncementsHoldOnlyAsSigned: a sealed announcement opens to
// its author and data on its topic, within its age; a changed byte, a
// swapped author, another topic, a stale or early time, or a huge key
// fails with errSignature.
func TestSignedAnnouncementsHoldOnlyAsSigned(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, id := newTestSigner(t, now)
	other, _ := newTestSigner(t, now)
	sealed, err := s.seal("/t", []byte("announcement"))
	require.NoError(t, err)

	from, data, err := openSigned("/t", sealed, now.Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, id, from)
	require.Equal(t, []byte("announcement"), data)

	var sa pb.SignedAnnouncement
	require.NoError(t, sa.Unmarshal(sealed))
	change := func(f func(*pb.SignedAnnouncement)) []byte {
		c := sa
		c.Data = append([]byte(nil), sa.Data...)
		f(&c)
		b, err := c.Marshal()
		require.NoError(t, err)
		return b
	}
	for name, tc := range map[string]struct {
		b     []byte
		topic string
		at    time.Time
	}{
		"data changed":    {change(func(c *pb.SignedAnnouncement) { c.Data[0] ^= 1 }), "/t", now},
		"author swapped":  {change(func(c *pb.SignedAnnouncement) { c.Author = other.author }), "/t", now},
		"time changed":    {change(func(c *pb.SignedAnnouncement) { c.Time++ }), "/t", now},
		"no signature":    {change(func(c *pb.SignedAnnouncement) { c.Signature = nil }), "/t", now},
		"huge author key": {change(func(c *pb.SignedAnnouncement) { c.Author = make([]byte, maxAuthorKey+1) }), "/t", now},
		"another topic":   {sealed, "/u", now},
		"stale":           {sealed, "/t", now.Add(maxSignedAge + time.Second)},
		"from the future": {sealed, "/t", now.Add(-maxSignedAhead - time.Second)},
		"not an envelope": {[]byte{0xff, 0xff}, "/t", now},
		"empty":           {nil, "/t", now},
	} {
		_, _, err := openSigned(tc.topic, tc.b, tc.at)
		require.ErrorIs(t, err, errSignature, name)
	}
}

// FuzzOpenSigned: no input panics, and whatever opens was signed by the
// author it names, over the data it returns.
func FuzzOpenSigned(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	s, _ := newTestSigner(f, now)
	sealed, err := s.seal("/t", []byte("announcement"))
	require.NoError(f, err)
	f.Add(sealed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		from, data, err := openSigned("/t", b, now)
		if err != nil {
			return
		}
		var sa pb.SignedAnnouncement
		require.NoError(t, sa.Unmarshal(b))
		pub, err := crypto.UnmarshalPublicKey(sa.Author)
		require.NoError(t, err)
		ok, err := pub.Verify(signedBytes("/t", sa.Time, data), sa.Signature)
		require.True(t, ok && err == nil)
		require.True(t, from.MatchesPublicKey(pub))
	})
}
