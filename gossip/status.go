package gossip

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Counters are totals since the service started.
type Counters struct {
	// Announcements published and their bytes (GossipSub framing and
	// forwarding not included).
	Announcements     int
	AnnouncementBytes int64
	// Sessions started, by trigger, and how many of them failed.
	Sessions map[string]int
	Failed   int
	// CatchUps counts the scopes streamed from several members at once
	// (a member that held nothing of them).
	CatchUps int
}

// GroupStatus describes a joined group.
type GroupStatus struct {
	Group
	// LastAnnounced is when we last announced.
	LastAnnounced time.Time
	Members       []MemberStatus
}

// MemberStatus describes another member of a group.
type MemberStatus struct {
	Peer peer.ID
	// LastAnnouncement is when the member last announced; zero if it has
	// only been seen in the topic.
	LastAnnouncement time.Time
	// LastSync is when a session of ours with it last ended; LastError
	// says how, empty for success.
	LastSync  time.Time
	LastError string
	// InSync reports whether every root it last announced equals ours.
	InSync bool
}

// Status returns the joined groups, sorted by name.
func (s *Service) Status(ctx context.Context) ([]GroupStatus, error) {
	var out []GroupStatus
	err := s.call(ctx, func() {
		for _, name := range slices.Sorted(maps.Keys(s.groups)) {
			g := s.groups[name]
			gs := GroupStatus{Group: g.Group, LastAnnounced: g.lastAnnounced}
			for _, p := range s.members(g) {
				ms := MemberStatus{Peer: p}
				if m := g.members[p]; m != nil {
					ms.LastAnnouncement, ms.LastSync, ms.LastError = m.lastAnnounce, m.lastSync, m.lastErr
					ms.InSync = len(m.states) > 0 && s.inSync(g, m)
				}
				gs.Members = append(gs.Members, ms)
			}
			out = append(out, gs)
		}
	})
	return out, err
}

// inSync reports whether a member's announced roots all equal ours.
func (s *Service) inSync(g *groupState, m *member) bool {
	for sc, theirs := range m.states {
		st, ok := s.store.State(sc)
		if !ok || prefixOf(st.Root) != theirs.root {
			return false
		}
	}
	return true
}

// Counters returns the service's totals.
func (s *Service) Counters(ctx context.Context) (Counters, error) {
	var c Counters
	err := s.call(ctx, func() {
		c = s.counts
		c.Sessions = maps.Clone(s.counts.Sessions)
	})
	return c, err
}
