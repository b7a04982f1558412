package gossip

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// NoteAdded tells gossip of messages stored locally, from the node's own
// API (not from sync: those other members already have). With recent
// announcements on (WithRecent), their hashes go out in a short
// announcement after a delay, at most WithRecent's number of them, so
// that members fetch them before the next interval; the rest waits for
// the roots.
func (s *Service) NoteAdded(msgs []reconcile.Message) {
	if s.cfg.recentMax == 0 || len(msgs) == 0 {
		return
	}
	keys := make([]reconcile.Key, len(msgs))
	scopes := make([]reconcile.Scope, len(msgs))
	for i := range msgs {
		keys[i], scopes[i] = msgs[i].Key(), msgs[i].Scope()
	}
	s.post(func() {
		for _, g := range s.groups {
			for i, sc := range scopes {
				if _, ok := g.index[sc]; !ok || g.recentN >= s.cfg.recentMax {
					continue
				}
				g.recent[sc] = append(g.recent[sc], keys[i])
				g.recentN++
				if g.recentTimer == nil {
					g.recentTimer = s.after(s.cfg.recentDelay, func() { s.publishRecent(g) })
				}
			}
		}
	})
}

// Changed tells gossip that messages arrived in the scopes, from any
// source (local puts, or sessions on either side). The groups that hold
// them announce early, so that a change crosses the group in a fraction
// of an interval rather than one interval per hop.
func (s *Service) Changed(scopes []reconcile.Scope) {
	s.post(func() {
		for _, g := range s.groups {
			for _, sc := range scopes {
				if _, ok := g.index[sc]; ok {
					s.announceSoon(g)
					break
				}
			}
		}
	})
}

// publishRecent announces the keys of the group's recent messages.
func (s *Service) publishRecent(g *groupState) {
	g.recentTimer = nil
	if s.groups[g.Name] != g || g.recentN == 0 {
		return
	}
	recent := g.recent
	g.recent, g.recentN = make(map[reconcile.Scope][]reconcile.Key), 0
	data, err := encodeAnnouncement(&g.def, nil, recent)
	if err == nil {
		err = g.topic.Publish(s.ctx, data)
	}
	if err != nil {
		s.log.Debug("recent announcement failed", "group", g.Name, "err", err)
		return
	}
	s.counts.Announcements++
	s.counts.AnnouncementBytes += int64(len(data))
	if m := s.cfg.metrics; m != nil {
		m.AnnouncementPublished(g.Name, len(data))
	}
}

// onRecent fetches from the announcer the recent messages we lack.
func (s *Service) onRecent(g *groupState, from peer.ID, recent map[reconcile.Scope][]reconcile.Key) {
	for sc, keys := range recent {
		var lack []reconcile.Key
		for _, k := range keys {
			if has, err := s.store.Has(context.Background(), sc, k); err == nil && !has {
				lack = append(lack, k)
			}
		}
		if len(lack) > 0 {
			s.run(&job{group: g, peer: from, scopes: []reconcile.Scope{sc}, fetch: lack, trigger: TriggerRecent})
		}
	}
}
