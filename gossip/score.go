package gossip

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// PeerScoring returns the GossipSub option that scores peers the way the
// groups' topics expect. Every announcement a peer sends us that the
// validator rejects (malformed, of a scope outside the group, from
// outside a private group, or its own announcements sent far past its
// rate) counts
// against it: its score is -100 times the square of that count, which
// decays by 1 % a second. One rejected announcement (-100) prunes the
// peer from our mesh and ends gossip with it; three (-900) stop our own
// announcements going to it; four (-1,600) make us ignore it altogether.
// Nothing else is scored, so honest peers stay at 0. A node that runs its
// own GossipSub uses this; give it to a GossipSub of your own
// (node.WithPubSub) for the same protection. Each group's topic gets its
// parameters when it is joined.
func PeerScoring() pubsub.Option {
	return pubsub.WithPeerScore(&pubsub.PeerScoreParams{
		Topics:           map[string]*pubsub.TopicScoreParams{},
		AppSpecificScore: func(peer.ID) float64 { return 0 },
		DecayInterval:    time.Second,
		DecayToZero:      0.01,
		RetainScore:      10 * time.Minute,
	}, &pubsub.PeerScoreThresholds{
		GossipThreshold:   -1,
		PublishThreshold:  -400,
		GraylistThreshold: -1000,
	})
}

// topicScoreParams are the score parameters of a group's topic: invalid
// messages only (see PeerScoring).
func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                    1,
		TimeInMeshQuantum:              time.Second,
		InvalidMessageDeliveriesWeight: -100,
		InvalidMessageDeliveriesDecay:  0.99,
	}
}
