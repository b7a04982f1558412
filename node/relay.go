package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/pb"
	sprotocol "github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// RelayID is the GossipSub protocol of Waku relay (11/WAKU2-RELAY).
const RelayID protocol.ID = "/vac/waku/relay/2.0.0"

// relayBatch is the most relayed messages one Put stores.
const relayBatch = 512

// WithRelay makes the node a Waku relay peer that stores what it relays:
// it subscribes to the pubsub topic of every kept scope, forwards what
// Waku relays forward, and stores every valid Waku message of a kept
// scope through the checks of Put (maximum size, timestamp skew).
//
// The node's own GossipSub then speaks Waku relay: protocol
// /vac/waku/relay/2.0.0 alone, no author and no signature
// (StrictNoSign), message IDs the SHA-256 of the data. Sync groups share
// it, their announcements signed inside their data
// (gossip.SignedPubSubNetwork). A GossipSub given WithPubSub must be set
// up the same way (RelayPubSubOptions).
//
// A message is refused (and its sender's score lowered) if it does not
// decode, is larger than the store's maximum, or has a timestamp further
// than the store's maximum clock skew from the local clock either way, as
// Waku relays do. It is forwarded but not stored if it is ephemeral, has
// no timestamp, a version other than 0 (storesync keeps only the fields
// the message hash covers, and a version 1 payload needs its version to
// be read), or a content topic this node does not keep on that topic.
func WithRelay() Option {
	return func(c *config) error {
		c.relay = true
		return nil
	}
}

// RelayPubSubOptions are the GossipSub options of a Waku relay peer, for
// a caller who makes the GossipSub given to WithPubSub with WithRelay.
func RelayPubSubOptions() []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithGossipSubProtocols([]protocol.ID{RelayID}, func(f pubsub.GossipSubFeature, p protocol.ID) bool {
			return p == RelayID && (f == pubsub.GossipSubFeatureMesh || f == pubsub.GossipSubFeaturePX)
		}),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(func(m *pubsubpb.Message) string {
			h := sha256.Sum256(m.Data)
			return string(h[:])
		}),
	}
}

// relayed is what the relay validator hands on for storing.
type relayed struct{ m reconcile.Message }

// startRelay subscribes to the pubsub topics of the kept scopes.
func (n *Node) startRelay(ps *pubsub.PubSub) error {
	var topics []string
	for _, sc := range n.store.Scopes() {
		if !slices.Contains(topics, sc.PubsubTopic) {
			topics = append(topics, sc.PubsubTopic)
		}
	}
	in := make(chan reconcile.Message, relayBatch)
	for _, topic := range topics {
		if err := ps.RegisterTopicValidator(topic, n.relayValidator(topic)); err != nil {
			return fmt.Errorf("node: relay %s: %w", topic, err)
		}
		t, err := ps.Join(topic)
		if err != nil {
			return fmt.Errorf("node: relay %s: %w", topic, err)
		}
		sub, err := t.Subscribe()
		if err != nil {
			return fmt.Errorf("node: relay %s: %w", topic, err)
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer func() {
				// A GossipSub of the caller's outlives the node: leave
				// the topic (best effort: the subscription's end is
				// asynchronous, and the topic may not close yet).
				sub.Cancel()
				_ = ps.UnregisterTopicValidator(topic)
				_ = t.Close()
			}()
			for {
				m, err := sub.Next(n.ctx)
				if err != nil {
					return
				}
				if r, ok := m.ValidatorData.(relayed); ok {
					select {
					case in <- r.m:
					case <-n.ctx.Done():
						return
					}
				}
			}
		}()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.storeRelayed(in)
	}()
	return nil
}

// storeRelayed stores the relayed messages as they come, in batches of
// what has queued up.
func (n *Node) storeRelayed(in <-chan reconcile.Message) {
	batch := make([]reconcile.Message, 0, relayBatch)
	for {
		select {
		case m := <-in:
			batch = append(batch[:0], m)
		case <-n.ctx.Done():
			return
		}
		for more := true; more && len(batch) < relayBatch; {
			select {
			case m := <-in:
				batch = append(batch, m)
			default:
				more = false
			}
		}
		res, err := n.Put(n.ctx, batch...)
		if err != nil && !errors.Is(err, context.Canceled) {
			n.log.Warn("storing relayed messages failed", "messages", len(batch), "err", err)
			continue
		}
		if len(res.Rejected) > 0 {
			n.log.Debug("relayed messages refused by the store", "refused", len(res.Rejected))
		}
		n.countRelayed(batch, res)
	}
}

// countRelayed counts what a Put of relayed messages did, per topic.
func (n *Node) countRelayed(batch []reconcile.Message, res PutResult) {
	if n.waku == nil {
		return
	}
	type tally struct{ all, added, rejected int }
	by := make(map[string]*tally)
	at := func(topic string) *tally {
		t, ok := by[topic]
		if !ok {
			t = &tally{}
			by[topic] = t
		}
		return t
	}
	for i := range batch {
		at(batch[i].PubsubTopic).all++
	}
	for i := range res.Added {
		at(res.Added[i].PubsubTopic).added++
	}
	for _, r := range res.Rejected {
		at(batch[r.Index].PubsubTopic).rejected++
	}
	for topic, t := range by {
		n.waku.relay(topic, relayStored, t.added)
		n.waku.relay(topic, relayRejected, t.rejected)
		n.waku.relay(topic, relayDuplicate, t.all-t.added-t.rejected)
	}
}

// relayValidator is the GossipSub validator of a relay topic.
func (n *Node) relayValidator(topic string) func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult {
	return func(_ context.Context, _ peer.ID, pm *pubsub.Message) pubsub.ValidationResult {
		m, store, err := n.checkRelayed(topic, pm.Data)
		switch {
		case err != nil:
			n.waku.relay(topic, relayRefused, 1)
			return pubsub.ValidationReject
		case store:
			pm.ValidatorData = relayed{m}
		default:
			n.waku.relay(topic, relaySkipped, 1)
		}
		return pubsub.ValidationAccept
	}
}

// checkRelayed checks a Waku message relayed on topic: an error refuses
// it; otherwise store says whether this node keeps it.
func (n *Node) checkRelayed(topic string, data []byte) (m reconcile.Message, store bool, err error) {
	cfg := &n.store.cfg
	// The wire form of a message within the maximum size is a few dozen
	// bytes larger than the stored form CheckSize measures.
	if len(data) > cfg.maxMessageSize+1024 {
		return m, false, fmt.Errorf("relayed message of %d bytes", len(data))
	}
	var wm pb.WakuMessage
	if err := wm.Unmarshal(data); err != nil {
		return m, false, err
	}
	if wm.ContentTopic == "" {
		return m, false, errors.New("relayed message without a content topic")
	}
	if wm.Timestamp != 0 {
		if d := time.Duration(wm.Timestamp - cfg.now().UnixNano()); d > cfg.maxClockSkew || d < -cfg.maxClockSkew {
			return m, false, fmt.Errorf("relayed message timestamped %v from now", d)
		}
	}
	m = sprotocol.MessageFromWaku(topic, &wm)
	if err := m.CheckSize(cfg.maxMessageSize); err != nil {
		return m, false, err
	}
	if wm.Ephemeral || wm.Timestamp <= 0 || wm.Version != 0 {
		return m, false, nil
	}
	if _, kept := n.store.state(m.Scope()); !kept {
		return m, false, nil
	}
	return m, true, nil
}

// relayNetwork returns the gossip network of a relay node's sync groups
// over its GossipSub, announcements signed with the host's key.
func (n *Node) relayNetwork(ps *pubsub.PubSub) (gossip.Network, error) {
	key := n.host.Peerstore().PrivKey(n.host.ID())
	if key == nil {
		return nil, errors.New("node: relay: the host has no private key to sign announcements with")
	}
	return gossip.SignedPubSubNetwork(ps, key)
}
