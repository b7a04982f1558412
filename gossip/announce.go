package gossip

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/reconcile"
)

// rootPrefix is how much of a root fingerprint an announcement carries:
// enough to tell roots apart (2^-64 collisions) at a fraction of the size.
const rootPrefix = 8

// prefix is a root fingerprint cut to its announced prefix.
type prefix [rootPrefix]byte

func prefixOf(f reconcile.Fingerprint) prefix { return prefix(f[:rootPrefix]) }

// remoteState is what a member announced of one scope.
type remoteState struct {
	root   prefix
	count  uint64
	newest uint64 // Unix seconds
}

// announcement is a decoded, checked pb.Announcement: states of the
// group's scopes (none in an announcement of recent keys only) and the
// keys of recent messages, by scope.
type announcement struct {
	states map[reconcile.Scope]remoteState
	recent map[reconcile.Scope][]reconcile.Key
}

// MaxRecent bounds the recent keys of one announcement.
const MaxRecent = 256

var errBadAnnouncement = errors.New("bad announcement")

// decodeAnnouncement parses and checks an announcement of group g: the
// group digest must be g's, and there must be a root, a count and a
// newest time for every one of g's scopes, or none at all; recent keys
// must name g's scopes and stay within bounds.
func decodeAnnouncement(data []byte, g *def, maxSize int) (*announcement, error) {
	if len(data) > maxSize {
		return nil, fmt.Errorf("%w: %d bytes", errBadAnnouncement, len(data))
	}
	var a pb.Announcement
	if err := a.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadAnnouncement, err)
	}
	if !bytes.Equal(a.Group, g.digest[:]) {
		return nil, fmt.Errorf("%w: another definition of the group", errBadAnnouncement)
	}
	n := len(g.Scopes)
	out := &announcement{}
	switch {
	case len(a.Roots) == 0 && len(a.Counts) == 0 && len(a.Newest) == 0:
	case len(a.Roots) == n*rootPrefix && len(a.Counts) == n && len(a.Newest) == n:
		out.states = make(map[reconcile.Scope]remoteState, n)
		for i, sc := range g.Scopes {
			out.states[sc] = remoteState{root: prefix(a.Roots[i*rootPrefix:]), count: a.Counts[i], newest: a.Newest[i]}
		}
	default:
		return nil, fmt.Errorf("%w: scope states do not match the group", errBadAnnouncement)
	}
	total := 0
	for _, r := range a.Recent {
		if int(r.Scope) >= n {
			return nil, fmt.Errorf("%w: recent keys not of the group", errBadAnnouncement)
		}
		keys, err := reconcile.ParseKeys(r.Keys, MaxRecent-total)
		if err != nil {
			return nil, fmt.Errorf("%w: recent keys: %v", errBadAnnouncement, err)
		}
		if len(keys) == 0 {
			continue // an empty list says nothing; the encoder writes none
		}
		if out.recent == nil {
			out.recent = make(map[reconcile.Scope][]reconcile.Key)
		}
		sc := g.Scopes[r.Scope]
		out.recent[sc] = append(out.recent[sc], keys...)
		total += len(keys)
	}
	return out, nil
}

// encodeAnnouncement builds an announcement of group g: the local states
// of all its scopes (or none, when states is nil) and the keys of recent
// messages.
func encodeAnnouncement(g *def, states map[reconcile.Scope]ScopeState, recent map[reconcile.Scope][]reconcile.Key) ([]byte, error) {
	a := pb.Announcement{Group: g.digest[:]}
	if states != nil {
		a.Roots = make([]byte, 0, len(g.Scopes)*rootPrefix)
		for _, sc := range g.Scopes {
			st := states[sc]
			p := prefixOf(st.Root)
			a.Roots = append(a.Roots, p[:]...)
			a.Counts = append(a.Counts, st.Count)
			a.Newest = append(a.Newest, newestSeconds(st.Newest))
		}
	}
	for _, sc := range g.Scopes {
		keys := reconcile.NewSliceSet(recent[sc]) // a key list is sorted
		if len(keys) == 0 {
			continue
		}
		a.Recent = append(a.Recent, &pb.RecentKeys{Scope: uint32(g.index[sc]), Keys: reconcile.AppendKeys(nil, keys)})
	}
	return a.Marshal()
}

// EncodeAnnouncement returns the announcement a member of g with the
// given scope states publishes: what other implementations, and tests
// playing a member, need to speak the group's topic.
func EncodeAnnouncement(g Group, states map[reconcile.Scope]ScopeState) ([]byte, error) {
	d := define(g)
	if states == nil {
		states = map[reconcile.Scope]ScopeState{}
	}
	return encodeAnnouncement(&d, states, nil)
}

// newestSeconds is a newest timestamp as announced: Unix seconds, rounded
// up so that any message makes it positive.
func newestSeconds(ns int64) uint64 {
	if ns <= 0 {
		return 0
	}
	return uint64((ns + 999_999_999) / 1_000_000_000)
}
