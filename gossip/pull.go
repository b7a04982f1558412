package gossip

// This file is the pull policy: which announced states make us sync
// with whom, and when.

import (
	"bytes"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// onAnnouncement records a member's roots and schedules a pull if any
// differ from ours, and fetches recent messages we lack.
func (s *Service) onAnnouncement(g *groupState, from peer.ID, data []byte) {
	if s.groups[g.Name] != g || !g.allows(from) {
		return
	}
	a, err := decodeAnnouncement(data, &g.def, s.cfg.maxAnnouncement)
	if err != nil {
		return // the topic validator lets none through
	}
	if m := s.cfg.metrics; m != nil {
		m.AnnouncementReceived(g.Name)
	}
	m := g.members[from]
	if m == nil {
		s.makeRoom(g)
		m = &member{states: make(map[reconcile.Scope]remoteState), behindSince: make(map[reconcile.Scope]time.Time)}
		g.members[from] = m
	}
	now := s.cfg.now()
	m.lastAnnounce = now
	for sc, st := range a.states {
		m.states[sc] = st
		ours, ok := s.store.State(sc)
		if ok && prefixOf(ours.Root) != st.root && !ahead(st, ours) {
			if m.behindSince[sc].IsZero() {
				m.behindSince[sc] = now
			}
		} else {
			delete(m.behindSince, sc)
		}
	}
	if len(a.states) > 0 && len(s.differing(g, from)) > 0 {
		s.schedulePull(g)
	}
	s.onRecent(g, from, a.recent)
}

// differing returns the scopes we should pull from p: its announced root
// differs from ours, a session has not already settled that pair of
// roots, and p is ahead of us in the scope (compared with our state now,
// so an announcement that a later session overtook no longer counts), or
// has differed without being ahead for two intervals. Sessions go both ways (the server pulls what the client
// offers), so it is enough that one side of a differing pair asks: the
// one behind. The two-interval rule covers a server that declines
// offered messages.
func (s *Service) differing(g *groupState, p peer.ID) []reconcile.Scope {
	m, ps := g.members[p], s.peer(p)
	now := s.cfg.now()
	var out []reconcile.Scope
	for _, sc := range g.Scopes {
		theirs, ok := m.states[sc]
		if !ok || ps.unsupported[sc] {
			continue
		}
		st, ok := s.store.State(sc)
		if !ok {
			continue
		}
		ours := prefixOf(st.Root)
		if ours == theirs.root || ps.synced[sc] == [2]prefix{ours, theirs.root} {
			continue
		}
		since, behind := m.behindSince[sc]
		if ahead(theirs, st) || (behind && now.Sub(since) >= 2*s.cfg.interval) {
			out = append(out, sc)
		}
	}
	return out
}

// ahead reports whether an announced state is ahead of ours: more
// messages, or as many and a newer one, or, equal in both, a larger root
// prefix, so that of two differing members exactly one is ahead.
func ahead(theirs remoteState, ours ScopeState) bool {
	switch {
	case theirs.count != ours.Count:
		return theirs.count > ours.Count
	case theirs.newest != newestSeconds(ours.Newest):
		return theirs.newest > newestSeconds(ours.Newest)
	}
	p := prefixOf(ours.Root)
	return bytes.Compare(theirs.root[:], p[:]) > 0
}

// schedulePull fires a pull after a random delay within the spread, so
// that the members behind do not all ask the same announcer at once and
// more announcers are known by the time it fires.
func (s *Service) schedulePull(g *groupState) {
	if g.pullTimer != nil {
		return
	}
	// Pulls of a group are a spread apart at least: under churn every
	// announcement shows someone ahead, and one pull covers many.
	wait := s.jittered(s.cfg.spread / 2)
	if next := g.lastPull.Add(s.cfg.spread); s.cfg.now().Add(wait).Before(next) {
		wait = next.Sub(s.cfg.now())
	}
	g.pullTimer = s.after(wait, func() {
		g.pullTimer = nil
		s.pull(g)
	})
}

// pull starts a session with one of the members whose roots differ from
// ours, chosen at random among those ahead of us (more messages) when
// there are any, so that load spreads over the announcers.
func (s *Service) pull(g *groupState) {
	if s.groups[g.Name] != g {
		return
	}
	var pick []peer.ID
	for p := range g.members {
		if s.available(p) && len(s.differing(g, p)) > 0 {
			pick = append(pick, p)
		}
	}
	if len(pick) == 0 {
		return
	}
	if s.sessions >= s.cfg.maxSessions {
		s.schedulePull(g) // try again once a slot may be free
		return
	}
	slices.Sort(pick) // the map's order must not bias the choice
	p := pick[int(s.cfg.rand()*float64(len(pick)))%len(pick)]
	scopes := s.differing(g, p)
	ann := make(map[reconcile.Scope]prefix, len(scopes))
	for _, sc := range scopes {
		ann[sc] = g.members[p].states[sc].root
	}
	g.lastPull = s.cfg.now()
	s.run(&job{group: g, peer: p, scopes: scopes, trigger: TriggerAnnouncement, announced: ann,
		helpers: s.helpers(g, p, scopes)})
}

// maxHelpers bounds the members besides the chosen one that an empty
// scope is streamed from.
const maxHelpers = 3

// helpers returns, when we hold nothing of some of the scopes and p
// announced many messages there (WithCatchUpFrom), up to maxHelpers
// other members that announced messages in all of them and are not
// backed off, chosen at random: an empty member catches up from several
// at once.
func (s *Service) helpers(g *groupState, p peer.ID, scopes []reconcile.Scope) []peer.ID {
	var empty []reconcile.Scope
	for _, sc := range scopes {
		st, ok := s.store.State(sc)
		if ok && st.Count == 0 && g.members[p].states[sc].count >= max(s.cfg.catchUpFrom, 1) {
			empty = append(empty, sc)
		}
	}
	if len(empty) == 0 {
		return nil
	}
	var out []peer.ID
	now := s.cfg.now()
	for q, m := range g.members {
		// A helper may be busy with another session: serving a range
		// too costs it little.
		if ps := s.peer(q); q == p || now.Before(ps.backoffUntil) || now.Before(ps.notSpeakerUntil) {
			continue
		}
		holds := true
		for _, sc := range empty {
			if m.states[sc].count == 0 || s.peer(q).unsupported[sc] {
				holds = false
			}
		}
		if holds {
			out = append(out, q)
		}
	}
	slices.Sort(out) // the map's order must not bias the choice
	for i := len(out) - 1; i > 0; i-- {
		j := int(s.cfg.rand()*float64(i+1)) % (i + 1)
		out[i], out[j] = out[j], out[i]
	}
	return out[:min(len(out), maxHelpers)]
}
