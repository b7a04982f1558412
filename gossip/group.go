package gossip

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// TopicPrefix starts the GossipSub topic of every sync group; the group's
// name follows.
const TopicPrefix = "/storesync/1/group/"

// MaxGroupScopes bounds the scopes of one group, and with it the size of
// an announcement (about 40 bytes a scope).
const MaxGroupScopes = 1024

// Group is a sync group: a name and the scopes its members keep in sync.
// A node syncs only the scopes of the groups it joined.
type Group struct {
	Name   string
	Scopes []reconcile.Scope
	// Allow makes the group private when not empty: only these peers'
	// announcements count, and only they may sync the group's scopes.
	Allow []peer.ID
}

// Topic returns the group's GossipSub topic.
func (g Group) Topic() string { return TopicPrefix + g.Name }

// Private reports whether the group has an allow-list.
func (g Group) Private() bool { return len(g.Allow) > 0 }

// allows reports whether p may take part in the group.
func (g Group) allows(p peer.ID) bool {
	if !g.Private() {
		return true
	}
	for _, a := range g.Allow {
		if a == p {
			return true
		}
	}
	return false
}

// validate checks a group definition.
func (g Group) validate() error {
	switch {
	case g.Name == "" || len(g.Name) > 128 || strings.ContainsAny(g.Name, " \t\n/"):
		return fmt.Errorf("gossip: bad group name %q: 1 to 128 characters, no spaces or slashes", g.Name)
	case len(g.Scopes) == 0:
		return errors.New("gossip: a group needs at least one scope")
	case len(g.Scopes) > MaxGroupScopes:
		return fmt.Errorf("gossip: %d scopes in a group, at most %d", len(g.Scopes), MaxGroupScopes)
	}
	return nil
}

// scopeIndex maps the group's scope IDs to its scopes.
func (g Group) scopeIndex() map[[8]byte]reconcile.Scope {
	out := make(map[[8]byte]reconcile.Scope, len(g.Scopes))
	for _, sc := range g.Scopes {
		out[sc.ID()] = sc
	}
	return out
}
