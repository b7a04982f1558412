package gossip

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds on what the service remembers of other peers. A member that
// stops announcing is forgotten after memberTTL intervals (an honest one
// announces every interval); a group tracks at most maxMembers, the
// stalest giving way to a newcomer; the state of a peer that is no
// member of any group and has no session or back-off running is
// dropped; at most maxQueue sessions wait for a slot.
const (
	memberTTL  = 10
	maxMembers = 1024
	maxQueue   = 256
)

// errQueueFull is the error of a SyncGroup session that found the
// session queue full.
var errQueueFull = errors.New("gossip: too many sessions waiting")

// prune forgets g's members that have not announced for memberTTL
// intervals, then the state of peers no group holds.
func (s *Service) prune(g *groupState) {
	cutoff := s.cfg.now().Add(-memberTTL * s.cfg.interval)
	for p, m := range g.members {
		if ps := s.peers[p]; m.lastAnnounce.Before(cutoff) && (ps == nil || !ps.busy) {
			delete(g.members, p)
		}
	}
	s.prunePeers()
}

// prunePeers drops the state of peers that are no member of any group,
// run no session and wait out no back-off.
func (s *Service) prunePeers() {
	now := s.cfg.now()
	for p, ps := range s.peers {
		if ps.busy || now.Before(ps.backoffUntil) || now.Before(ps.notSpeakerUntil) {
			continue
		}
		member := false
		for _, g := range s.groups {
			if _, ok := g.members[p]; ok {
				member = true
				break
			}
		}
		if !member {
			delete(s.peers, p)
		}
	}
}

// makeRoom makes room in g for a new member when it is full, by
// forgetting the member that announced least recently.
func (s *Service) makeRoom(g *groupState) {
	if len(g.members) < maxMembers {
		return
	}
	var stalest *member
	var who peer.ID
	for p, m := range g.members {
		if stalest == nil || m.lastAnnounce.Before(stalest.lastAnnounce) {
			stalest, who = m, p
		}
	}
	delete(g.members, who)
}
