package gossip

import (
	"context"
	"errors"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// PubSubNetwork returns the Network of a GossipSub instance: one topic
// per group, with the group's validator registered on it. The author of
// an announcement is its GossipSub author, so the instance must sign its
// messages (StrictSign, GossipSub's default).
func PubSubNetwork(ps *pubsub.PubSub) Network { return psNetwork{ps: ps} }

// SignedPubSubNetwork is PubSubNetwork for a GossipSub instance whose
// messages carry no author (StrictNoSign, as when it also runs Waku
// relay): each announcement is signed inside its data with key, the
// member's own (the key of the host's peer ID), and its author is the
// signer. The instance must give messages IDs from their data (Waku
// relay's SHA-256 of the data does), since they carry no sequence
// number. A signed announcement more than 90 s old or 20 s ahead of the
// local clock is refused, so that one cannot be replayed after GossipSub
// has forgotten it.
func SignedPubSubNetwork(ps *pubsub.PubSub, key crypto.PrivKey) (Network, error) {
	s, err := newSigner(key, time.Now)
	if err != nil {
		return nil, err
	}
	return psNetwork{ps: ps, signer: s}, nil
}

type psNetwork struct {
	ps     *pubsub.PubSub
	signer *signer // nil: GossipSub's own authors
}

// opened is the author and data of a signed announcement, which the
// validator hands on to the subscription in pubsub.Message.ValidatorData.
type opened struct {
	from peer.ID
	data []byte
}

func (n psNetwork) Join(topic string, validate func(peer.ID, []byte) error) (Topic, error) {
	err := n.ps.RegisterTopicValidator(topic, func(_ context.Context, via peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		from, data := m.GetFrom(), m.Data
		if n.signer != nil {
			var err error
			if from, data, err = openSigned(topic, m.Data, n.signer.now()); err != nil {
				return pubsub.ValidationReject
			}
			m.ValidatorData = opened{from: from, data: data}
		}
		switch err := validate(from, data); {
		case err == nil:
			return pubsub.ValidationAccept
		case errors.Is(err, errRate), errors.Is(err, errFlood) && via != from:
			// Too often is the author's fault, not the forwarder's; and
			// a burst may be the network's doing.
			return pubsub.ValidationIgnore
		default:
			// A rejected message costs the peer that sent it its
			// score, where GossipSub scores peers (PeerScoring): an
			// author flooding its own announcements loses its mesh.
			return pubsub.ValidationReject
		}
	})
	if err != nil {
		return nil, err
	}
	t, err := n.ps.Join(topic)
	if err != nil {
		_ = n.ps.UnregisterTopicValidator(topic)
		return nil, err
	}
	// Without peer scoring on this GossipSub (the caller's may have none)
	// there is nothing to set.
	_ = t.SetScoreParams(topicScoreParams())
	sub, err := t.Subscribe()
	if err != nil {
		_ = t.Close()
		_ = n.ps.UnregisterTopicValidator(topic)
		return nil, err
	}
	events, err := t.EventHandler()
	if err != nil {
		sub.Cancel()
		_ = t.Close()
		_ = n.ps.UnregisterTopicValidator(topic)
		return nil, err
	}
	return &psTopic{ps: n.ps, name: topic, t: t, sub: sub, events: events, signer: n.signer}, nil
}

type psTopic struct {
	ps     *pubsub.PubSub
	name   string
	t      *pubsub.Topic
	sub    *pubsub.Subscription
	events *pubsub.TopicEventHandler
	signer *signer
}

func (t *psTopic) Publish(ctx context.Context, data []byte) error {
	if t.signer != nil {
		var err error
		if data, err = t.signer.seal(t.name, data); err != nil {
			return err
		}
	}
	return t.t.Publish(ctx, data)
}

func (t *psTopic) Next(ctx context.Context) (peer.ID, []byte, error) {
	for {
		m, err := t.sub.Next(ctx)
		if err != nil {
			return "", nil, err
		}
		if t.signer == nil {
			return m.GetFrom(), m.Data, nil
		}
		// Our own announcements skip the validator; they need no check.
		if o, ok := m.ValidatorData.(opened); ok {
			return o.from, o.data, nil
		}
		if from, data, err := openSigned(t.name, m.Data, t.signer.now()); err == nil {
			return from, data, nil
		}
	}
}

func (t *psTopic) Peers() []peer.ID { return t.t.ListPeers() }

func (t *psTopic) NextJoin(ctx context.Context) (peer.ID, error) {
	for {
		ev, err := t.events.NextPeerEvent(ctx)
		if err != nil {
			return "", err
		}
		if ev.Type == pubsub.PeerJoin {
			return ev.Peer, nil
		}
	}
}

func (t *psTopic) Close() error {
	t.events.Cancel()
	t.sub.Cancel()
	err := t.t.Close()
	return errors.Join(err, t.ps.UnregisterTopicValidator(t.name))
}
