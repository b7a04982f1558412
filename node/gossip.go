package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// startGossip mounts GossipSub (the caller's, or one of the node's own)
// and the gossip service.
func (n *Node) startGossip(ctx context.Context, cfg *config) error {
	net := cfg.gossipNet
	var ps *pubsub.PubSub
	switch {
	case net != nil && cfg.relay:
		return errors.New("node: WithRelay needs GossipSub, not a gossip network of the caller's")
	case net == nil:
		ps = cfg.pubsub
		if ps == nil {
			popts := []pubsub.Option{pubsub.WithPeerExchange(true), gossip.PeerScoring()}
			if cfg.relay {
				popts = append(popts, RelayPubSubOptions()...)
			}
			var err error
			if ps, err = pubsub.NewGossipSub(n.ctx, n.host, popts...); err != nil {
				return fmt.Errorf("node: start gossipsub: %w", err)
			}
		}
		net = gossip.PubSubNetwork(ps)
		if cfg.relay {
			var err error
			if net, err = n.relayNetwork(ps); err != nil {
				return err
			}
		}
	}
	gopts := cfg.gossipOpts
	if cfg.logger != nil {
		gopts = append([]gossip.Option{gossip.WithLogger(cfg.logger)}, gopts...)
	}
	if cfg.registerer != nil {
		gopts = append(gopts, gossip.WithMetricsTracer(gossip.NewMetricsTracer(cfg.registerer)))
	}
	g, err := gossip.New(n.host.ID(), net, gossipStore{n.store}, gossipSyncer{n}, gopts...)
	if err != nil {
		return err
	}
	n.gossip = g
	n.goWatchStore()
	if cfg.relay {
		if err := n.startRelay(ps); err != nil {
			return err
		}
	}
	for _, grp := range cfg.groups {
		if err := n.Join(ctx, grp); err != nil {
			return err
		}
	}
	return nil
}

// goWatchStore tells gossip of every scope that gains messages, whatever
// the source, so that its groups announce the change early.
func (n *Node) goWatchStore() {
	sub := n.store.Subscribe(n.ctx, 4096)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			m, ok := <-sub.C()
			if !ok {
				return
			}
			changed := map[reconcile.Scope]bool{m.Scope(): true}
			for more := true; more; {
				select {
				case m, ok := <-sub.C():
					if !ok {
						more = false
						break
					}
					changed[m.Scope()] = true
				default:
					more = false
				}
			}
			n.gossip.Changed(slices.Collect(maps.Keys(changed)))
		}
	}()
}

// Join keeps the group's scopes and joins the sync group: the node then
// announces their roots on the group's topic and pulls where members
// differ. A private group's scopes are synced with its members only.
func (n *Node) Join(ctx context.Context, g gossip.Group) error {
	for _, sc := range g.Scopes {
		if err := n.store.AddScope(ctx, sc); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.groups[g.Name] = g
	n.mu.Unlock()
	if err := n.gossip.Join(ctx, g); err != nil {
		n.mu.Lock()
		delete(n.groups, g.Name)
		n.mu.Unlock()
		return err
	}
	return nil
}

// Leave leaves a sync group; its scopes stay kept.
func (n *Node) Leave(ctx context.Context, name string) error {
	if err := n.gossip.Leave(ctx, name); err != nil {
		return err
	}
	n.mu.Lock()
	delete(n.groups, name)
	n.mu.Unlock()
	return nil
}

// SyncGroup syncs a joined group's scopes now with a few of its members
// and returns them.
func (n *Node) SyncGroup(ctx context.Context, name string) ([]peer.ID, error) {
	return n.gossip.SyncGroup(ctx, name, 0)
}

// Groups returns the joined groups with their members, the last
// announcement of each and our last sync with each.
func (n *Node) Groups(ctx context.Context) ([]gossip.GroupStatus, error) { return n.gossip.Status(ctx) }

// Gossip returns the node's gossip service.
func (n *Node) Gossip() *gossip.Service { return n.gossip }

// authorize lets a peer sync a scope unless every joined group that holds
// the scope is private and none of them lists the peer.
func (n *Node) authorize(p peer.ID, sc reconcile.Scope) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	restricted := false
	for _, g := range n.groups {
		if !slices.Contains(g.Scopes, sc) {
			continue
		}
		if !g.Private() || slices.Contains(g.Allow, p) {
			return true
		}
		restricted = true
	}
	return !restricted
}

// gossipStore adapts Store to what gossip reads.
type gossipStore struct{ *Store }

func (g gossipStore) State(sc reconcile.Scope) (gossip.ScopeState, bool) {
	st, ok := g.Stats(sc)
	return gossip.ScopeState{Root: st.Root, Count: st.Count, Newest: st.Newest, LastAdded: st.LastAdded}, ok
}

// gossipSyncer runs gossip's sessions through the node, so that Status
// records them like any other.
type gossipSyncer struct{ n *Node }

func (g gossipSyncer) Sync(ctx context.Context, p peer.ID, scopes ...reconcile.Scope) (*protocol.Report, error) {
	return g.n.SyncNow(ctx, p, scopes...)
}

func (g gossipSyncer) Fetch(ctx context.Context, p peer.ID, sc reconcile.Scope, keys []reconcile.Key) (protocol.ScopeReport, error) {
	return g.n.sync.Fetch(ctx, p, sc, keys)
}

func (g gossipSyncer) CatchUp(ctx context.Context, sc reconcile.Scope, peers ...peer.ID) (protocol.ScopeReport, error) {
	return g.n.CatchUp(ctx, sc, peers...)
}
