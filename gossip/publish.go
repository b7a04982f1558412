package gossip

// This file publishes a group's announcements: on the interval, and
// early when our roots change.

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
