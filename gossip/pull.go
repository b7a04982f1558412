package gossip

import (
	"bytes"
	"errors"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// Triggers of sessions, as counted in Counters and metrics.
const (
	TriggerAnnouncement = "announcement"
	TriggerStartup      = "startup"
	TriggerIdle         = "idle"
	TriggerDemand       = "demand"
	TriggerRecent       = "recent"
)

// job is a session to run when a slot frees: a sync of some scopes with
// a peer, or a fetch of recent hashes.
type job struct {
	group  *groupState
	peer   peer.ID
	scopes []reconcile.Scope
	fetch  []reconcile.Key // keys of recent messages of scopes[0]
	// helpers are other members that hold the scopes we hold nothing of:
	// those scopes are streamed from the peer and them in parallel
	// before the session.
	helpers []peer.ID
	trigger string
	// roots the peer announced, recorded as synced on success.
	announced map[reconcile.Scope]prefix
	done      chan error
}

// announce publishes the group's roots and schedules the next
// announcement; it also runs the idle trigger.
func (s *Service) announce(g *groupState) {
	next := s.jittered(s.cfg.interval)
	g.nextAnnounce = s.cfg.now().Add(next)
	g.announceTimer = s.after(next, func() { s.announce(g) })
	s.prune(g)
	data, err := encodeAnnouncement(&g.def, s.statesOf(g.Scopes), nil)
	if err == nil {
		err = g.topic.Publish(s.ctx, data)
	}
	if err != nil {
		s.log.Debug("announcement failed", "group", g.Name, "err", err)
		return
	}
	g.lastAnnounced = s.cfg.now()
	s.counts.Announcements++
	s.counts.AnnouncementBytes += int64(len(data))
	if m := s.cfg.metrics; m != nil {
		m.AnnouncementPublished(g.Name, len(data))
	}
	s.idleCheck(g)
}

// announceSoon brings the group's next announcement forward after our
// roots changed or a peer joined, so that members learn of it within a
// fraction of an interval. Announcements stay a spread apart, well within
// the topic validator's rate: a request within a spread of the last
// announcement is deferred, not dropped.
func (s *Service) announceSoon(g *groupState) {
	if s.groups[g.Name] != g || g.soon {
		return
	}
	now := s.cfg.now()
	at := now.Add(s.jittered(s.cfg.spread / 4))
	if next := g.lastAnnounced.Add(s.cfg.spread); at.Before(next) {
		at = next
	}
	if !at.Before(g.nextAnnounce) {
		return // the regular announcement comes first
	}
	g.soon = true
	g.announceTimer.Stop()
	g.announceTimer = s.after(at.Sub(now), func() {
		g.soon = false
		s.announce(g)
	})
}

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

// run starts a job now if a slot is free, else queues it.
func (s *Service) run(j *job) {
	if s.sessions >= s.cfg.maxSessions || !s.available(j.peer) {
		if len(s.queue) >= maxQueue {
			if j.done != nil {
				j.done <- errQueueFull
			}
			return
		}
		s.queue = append(s.queue, j)
		return
	}
	s.start(j)
}

// start runs a job's session on a goroutine of its own.
func (s *Service) start(j *job) {
	now := s.cfg.now()
	for _, sc := range j.scopes {
		j.group.touched[sc] = now
	}
	s.sessions++
	s.peer(j.peer).busy = true
	s.counts.Sessions[j.trigger]++
	if m := s.cfg.metrics; m != nil {
		m.SessionStarted(j.group.Name, j.trigger)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var rep *protocol.Report
		var err error
		if j.fetch != nil {
			var r protocol.ScopeReport
			r, err = s.syncer.Fetch(s.ctx, j.peer, j.scopes[0], j.fetch)
			rep = &protocol.Report{Peer: j.peer, Scopes: []protocol.ScopeReport{r}}
		} else {
			s.streamFrom(j)
			rep, err = s.syncer.Sync(s.ctx, j.peer, j.scopes...)
		}
		s.post(func() { s.finished(j, rep, err) })
	}()
}

// streamFrom streams the job's empty scopes from its peer and helpers
// in parallel; the session that follows proves the roots. A failure is
// left to that session, which streams from its peer alone.
func (s *Service) streamFrom(j *job) {
	if len(j.helpers) == 0 {
		return
	}
	peers := append([]peer.ID{j.peer}, j.helpers...)
	for _, sc := range j.scopes {
		if st, ok := s.store.State(sc); !ok || st.Count > 0 {
			continue
		}
		s.post(func() { s.counts.CatchUps++ })
		if _, err := s.syncer.CatchUp(s.ctx, sc, peers...); err != nil {
			s.log.Debug("catch-up from several members failed", "scope", sc, "err", err)
		}
	}
}

// finished records a session's outcome, starts queued jobs, and pulls
// again where roots still differ.
func (s *Service) finished(j *job, rep *protocol.Report, err error) {
	s.sessions--
	ps := s.peer(j.peer)
	ps.busy = false
	now := s.cfg.now()
	m := j.group.members[j.peer]
	switch {
	case errors.Is(err, protocol.ErrProtocolNotSupported):
		ps.notSpeakerUntil = now.Add(s.cfg.notSpeakerFor)
		s.log.Info("member does not speak the sync protocol; not asking it again for a while", "peer", j.peer)
	case err != nil:
		s.counts.Failed++
		ps.failures++
		back := s.cfg.backoffBase << min(ps.failures-1, 20)
		ps.backoffUntil = now.Add(s.jittered(min(back, s.cfg.backoffMax)))
		s.log.Debug("gossip session failed", "peer", j.peer, "trigger", j.trigger, "err", err)
	default:
		ps.failures = 0
	}
	if m != nil {
		m.lastSync = now
		m.lastErr = ""
		if err != nil {
			m.lastErr = err.Error()
		}
	}
	if rep != nil && err == nil {
		for _, r := range rep.Scopes {
			if errors.Is(r.Err, protocol.ErrUnsupportedScope) || errors.Is(r.Err, protocol.ErrRefused) {
				ps.unsupported[r.Scope] = true
				continue
			}
			if theirs, ok := j.announced[r.Scope]; ok && r.Err == nil {
				if st, ok := s.store.State(r.Scope); ok {
					ps.synced[r.Scope] = [2]prefix{prefixOf(st.Root), theirs}
				}
			}
		}
	}
	if j.done != nil {
		j.done <- err
	}
	s.pump()
	for _, g := range s.groups {
		for p := range g.members {
			if len(s.differing(g, p)) > 0 {
				s.schedulePull(g)
				break
			}
		}
	}
}

// pump starts queued jobs while slots are free.
func (s *Service) pump() {
	var keep []*job
	for _, j := range s.queue {
		switch {
		case s.groups[j.group.Name] != j.group:
			if j.done != nil {
				j.done <- errClosed
			}
		case s.sessions < s.cfg.maxSessions && s.available(j.peer):
			s.start(j)
		default:
			keep = append(keep, j)
		}
	}
	s.queue = keep
}
