package gossip

import (
	"context"
	"errors"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// PubSubNetwork returns the Network of a GossipSub instance: one topic
// per group, with the group's validator registered on it.
func PubSubNetwork(ps *pubsub.PubSub) Network { return psNetwork{ps} }

type psNetwork struct{ ps *pubsub.PubSub }

func (n psNetwork) Join(topic string, validate func(peer.ID, []byte) error) (Topic, error) {
	err := n.ps.RegisterTopicValidator(topic, func(_ context.Context, via peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		switch err := validate(m.GetFrom(), m.Data); {
		case err == nil:
			return pubsub.ValidationAccept
		case errors.Is(err, errRate), errors.Is(err, errFlood) && via != m.GetFrom():
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
	return &psTopic{ps: n.ps, name: topic, t: t, sub: sub, events: events}, nil
}

type psTopic struct {
	ps     *pubsub.PubSub
	name   string
	t      *pubsub.Topic
	sub    *pubsub.Subscription
	events *pubsub.TopicEventHandler
}

func (t *psTopic) Publish(ctx context.Context, data []byte) error { return t.t.Publish(ctx, data) }

func (t *psTopic) Next(ctx context.Context) (peer.ID, []byte, error) {
	m, err := t.sub.Next(ctx)
	if err != nil {
		return "", nil, err
	}
	return m.GetFrom(), m.Data, nil
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
