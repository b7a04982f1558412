package gossip

import (
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
	newest uint64
}

// announcement is a decoded, checked pb.Announcement: states of the
// group's scopes and recent hashes, by scope.
type announcement struct {
	states map[reconcile.Scope]remoteState
	recent map[reconcile.Scope][]reconcile.Hash
}

// MaxRecent bounds the recent hashes of one announcement.
const MaxRecent = 256

var errBadAnnouncement = errors.New("bad announcement")

// decodeAnnouncement parses and checks an announcement against its group:
// every scope one of the group's, each at most once, fields of the right
// sizes, recent hashes within bounds.
func decodeAnnouncement(data []byte, scopes map[[8]byte]reconcile.Scope, maxSize int) (*announcement, error) {
	if len(data) > maxSize {
		return nil, fmt.Errorf("%w: %d bytes", errBadAnnouncement, len(data))
	}
	var a pb.Announcement
	if err := a.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadAnnouncement, err)
	}
	out := &announcement{states: make(map[reconcile.Scope]remoteState, len(a.Scopes))}
	for _, st := range a.Scopes {
		sc, ok := lookup(scopes, st.Scope)
		if !ok || len(st.Root) != rootPrefix {
			return nil, fmt.Errorf("%w: scope state not of the group", errBadAnnouncement)
		}
		if _, dup := out.states[sc]; dup {
			return nil, fmt.Errorf("%w: scope announced twice", errBadAnnouncement)
		}
		out.states[sc] = remoteState{root: prefix(st.Root), count: st.Count, newest: st.Newest}
	}
	total := 0
	for _, r := range a.Recent {
		sc, ok := lookup(scopes, r.Scope)
		if !ok || len(r.Hashes)%reconcile.HashSize != 0 {
			return nil, fmt.Errorf("%w: recent hashes not of the group", errBadAnnouncement)
		}
		if out.recent == nil {
			out.recent = make(map[reconcile.Scope][]reconcile.Hash)
		}
		for p := r.Hashes; len(p) > 0; p = p[reconcile.HashSize:] {
			out.recent[sc] = append(out.recent[sc], reconcile.Hash(p[:reconcile.HashSize]))
			total++
		}
	}
	if total > MaxRecent {
		return nil, fmt.Errorf("%w: %d recent hashes", errBadAnnouncement, total)
	}
	return out, nil
}

func lookup(scopes map[[8]byte]reconcile.Scope, id []byte) (reconcile.Scope, bool) {
	if len(id) != 8 {
		return reconcile.Scope{}, false
	}
	sc, ok := scopes[[8]byte(id)]
	return sc, ok
}

// encodeAnnouncement builds an announcement of the given local states and
// recent hashes.
func encodeAnnouncement(states map[reconcile.Scope]ScopeState, recent map[reconcile.Scope][]reconcile.Hash) ([]byte, error) {
	var a pb.Announcement
	for sc, st := range states {
		id := sc.ID()
		p := prefixOf(st.Root)
		a.Scopes = append(a.Scopes, &pb.ScopeState{Scope: id[:], Root: p[:], Count: st.Count, Newest: uint64(max(st.Newest, 0))})
	}
	for sc, hs := range recent {
		id := sc.ID()
		r := &pb.RecentHashes{Scope: id[:], Hashes: make([]byte, 0, len(hs)*reconcile.HashSize)}
		for _, h := range hs {
			r.Hashes = append(r.Hashes, h[:]...)
		}
		a.Recent = append(a.Recent, r)
	}
	return a.Marshal()
}
