package gossip

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// TopicPrefix starts the GossipSub topic of every sync group; the group's
// name follows.
const TopicPrefix = "/storesync/2/group/"

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

// def is a group ready for the wire: its scopes sorted by ID, their
// positions, and the digest that names the definition.
type def struct {
	Group
	digest [8]byte
	index  map[reconcile.Scope]int
}

// define sorts a group's scopes (dropping duplicates) and computes its
// digest: SHA-256 over the length-prefixed name and the sorted scope IDs.
func define(g Group) def {
	scopes := slices.Clone(g.Scopes)
	slices.SortFunc(scopes, func(a, b reconcile.Scope) int {
		ia, ib := a.ID(), b.ID()
		return bytes.Compare(ia[:], ib[:])
	})
	scopes = slices.Compact(scopes)
	g.Scopes = scopes
	d := sha256.New()
	d.Write(binary.AppendUvarint(nil, uint64(len(g.Name))))
	d.Write([]byte(g.Name))
	out := def{Group: g, index: make(map[reconcile.Scope]int, len(scopes))}
	for i, sc := range scopes {
		id := sc.ID()
		d.Write(id[:])
		out.index[sc] = i
	}
	copy(out.digest[:], d.Sum(nil))
	return out
}
