package gossip

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// startup syncs every scope of a new group with a few members, once the
// topic's peers are known; it retries a few times while there are none.
func (s *Service) startup(g *groupState, try int) {
	g.startupTimer = nil
	if s.groups[g.Name] != g {
		return
	}
	peers := s.members(g)
	if len(peers) == 0 {
		if try < 5 {
			g.startupTimer = s.after(s.cfg.startupDelay, func() { s.startup(g, try+1) })
		}
		return
	}
	chosen := s.choose(peers, s.cfg.startupPeers)
	for i, p := range chosen {
		j := &job{group: g, peer: p, scopes: g.Scopes, trigger: TriggerStartup}
		if i == 0 {
			// A scope we hold nothing of is streamed from all the chosen
			// members at once; the other jobs then find it caught up.
			j.helpers = chosen[1:]
		}
		s.run(j)
	}
}

// members returns the peers of the group's topic that may take part, and
// the members that announced, without us.
func (s *Service) members(g *groupState) []peer.ID {
	seen := make(map[peer.ID]bool)
	var out []peer.ID
	add := func(p peer.ID) {
		if p != s.self && g.allows(p) && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range g.topic.Peers() {
		add(p)
	}
	for p := range g.members {
		add(p)
	}
	slices.Sort(out)
	return out
}

// choose picks up to n of peers at random.
func (s *Service) choose(peers []peer.ID, n int) []peer.ID {
	peers = slices.Clone(peers)
	for i := len(peers) - 1; i > 0; i-- {
		j := int(s.cfg.rand()*float64(i+1)) % (i + 1)
		peers[i], peers[j] = peers[j], peers[i]
	}
	return peers[:min(n, len(peers))]
}

// idleCheck syncs, with a random member, every scope of the group in
// which nothing arrived and no session ran for the idle time.
func (s *Service) idleCheck(g *groupState) {
	if s.cfg.idle <= 0 {
		return
	}
	now := s.cfg.now()
	var idle []reconcile.Scope
	for _, sc := range g.Scopes {
		st, ok := s.store.State(sc)
		if !ok {
			continue
		}
		last := g.joined
		for _, t := range []time.Time{st.LastAdded, g.touched[sc]} {
			if t.After(last) {
				last = t
			}
		}
		if now.Sub(last) >= s.cfg.idle {
			idle = append(idle, sc)
			g.touched[sc] = now // once per idle period
		}
	}
	if len(idle) == 0 {
		return
	}
	for _, p := range s.choose(s.members(g), 1) {
		s.run(&job{group: g, peer: p, scopes: idle, trigger: TriggerIdle})
	}
}

// SyncGroup syncs every scope of a joined group with up to n random
// members now (n <= 0: as many as the start-up sync uses) and waits for
// the sessions. It returns the members synced with and the first error;
// when the service closes meanwhile, it returns at once with an error.
func (s *Service) SyncGroup(ctx context.Context, name string, n int) ([]peer.ID, error) {
	if n <= 0 {
		n = max(s.cfg.startupPeers, 1)
	}
	var chosen []peer.ID
	var jobs []*job
	var err error
	if cerr := s.call(ctx, func() {
		var g *groupState
		if g, err = s.group(name); err != nil {
			return
		}
		chosen = s.choose(s.members(g), n)
		for _, p := range chosen {
			j := &job{group: g, peer: p, scopes: g.Scopes, trigger: TriggerDemand, done: make(chan error, 1)}
			jobs = append(jobs, j)
			s.run(j)
		}
	}); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("gossip: no member of group %q known yet", name)
	}
	var first error
	for _, j := range jobs {
		select {
		case e := <-j.done:
			if first == nil {
				first = e
			}
		case <-ctx.Done():
			return chosen, ctx.Err()
		case <-s.ctx.Done():
			// A closed service reports no more sessions, queued or
			// running.
			return chosen, errClosed
		}
	}
	return chosen, first
}
