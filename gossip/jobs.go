package gossip

// This file schedules sessions: the jobs the triggers and announcements
// ask for, run when a slot is free, and what their outcomes change.

import (
	"errors"

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
