package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/pb"
)

// Announcements signed inside their data serve GossipSub instances whose
// messages carry no author (StrictNoSign, the policy of Waku relay, with
// which a node may share its GossipSub). The author is then the signer,
// and what a signature proves takes the place of what GossipSub's own
// signatures prove: the rate per author, and a flood rejected only from
// its author.

// signContext starts every signed announcement's signed bytes, so that
// the signature means nothing elsewhere.
const signContext = "storesync/announcement/1\x00"

const (
	// maxSignedAge is how old a signed announcement may be: under
	// GossipSub's two minutes of remembered message IDs, so that a replay
	// of an older one is refused rather than delivered again.
	maxSignedAge = 90 * time.Second
	// maxSignedAhead is how far ahead of the local clock it may be.
	maxSignedAhead = 20 * time.Second
	// maxAuthorKey caps the author's encoded public key (an RSA key of
	// 4,096 bits takes about 550 bytes).
	maxAuthorKey = 1024
)

// errSignature marks a signed announcement that does not hold.
var errSignature = fmt.Errorf("%w: bad signed announcement", errBadAnnouncement)

// signer seals a member's announcements with its key.
type signer struct {
	key    crypto.PrivKey
	author []byte // the public key, encoded
	now    func() time.Time
}

func newSigner(key crypto.PrivKey, now func() time.Time) (*signer, error) {
	if key == nil {
		return nil, errors.New("gossip: no key to sign announcements with")
	}
	pub, err := crypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	return &signer{key: key, author: pub, now: now}, nil
}

// signedBytes returns what a signature covers.
func signedBytes(topic string, t int64, data []byte) []byte {
	b := make([]byte, 0, len(signContext)+len(topic)+12+len(data))
	b = append(b, signContext...)
	b = binary.AppendUvarint(b, uint64(len(topic)))
	b = append(b, topic...)
	b = binary.BigEndian.AppendUint64(b, uint64(t))
	return append(b, data...)
}

// seal returns data as a signed announcement on topic.
func (s *signer) seal(topic string, data []byte) ([]byte, error) {
	t := s.now().UnixNano()
	sig, err := s.key.Sign(signedBytes(topic, t, data))
	if err != nil {
		return nil, fmt.Errorf("gossip: sign: %w", err)
	}
	return (&pb.SignedAnnouncement{Author: s.author, Time: t, Data: data, Signature: sig}).Marshal()
}

// openSigned checks a signed announcement received on topic and returns
// its author and data: it must decode, be fresh, and carry a valid
// signature of its author over them.
func openSigned(topic string, b []byte, now time.Time) (peer.ID, []byte, error) {
	var sa pb.SignedAnnouncement
	if err := sa.Unmarshal(b); err != nil {
		return "", nil, fmt.Errorf("%w: %w", errSignature, err)
	}
	if len(sa.Author) > maxAuthorKey {
		return "", nil, fmt.Errorf("%w: author key of %d bytes", errSignature, len(sa.Author))
	}
	at := time.Unix(0, sa.Time)
	if at.Before(now.Add(-maxSignedAge)) || at.After(now.Add(maxSignedAhead)) {
		return "", nil, fmt.Errorf("%w: signed at %v, now %v", errSignature, at.UTC(), now.UTC())
	}
	pub, err := crypto.UnmarshalPublicKey(sa.Author)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", errSignature, err)
	}
	ok, err := pub.Verify(signedBytes(topic, sa.Time, sa.Data), sa.Signature)
	if err != nil || !ok {
		return "", nil, fmt.Errorf("%w: the signature does not verify", errSignature)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", errSignature, err)
	}
	return id, sa.Data, nil
}
