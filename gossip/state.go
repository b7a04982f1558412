package gossip

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// groupState is the loop's record of a joined group.
type groupState struct {
	def
	topic         Topic
	joined        time.Time
	members       map[peer.ID]*member
	announceTimer *time.Timer
	startupTimer  *time.Timer
	pullTimer     *time.Timer
	recentTimer   *time.Timer
	recent        map[reconcile.Scope][]reconcile.Key
	recentN       int
	touched       map[reconcile.Scope]time.Time // start of the last session on the scope
	lastPull      time.Time
	lastAnnounced time.Time
	nextAnnounce  time.Time
	soon          bool // an early announcement is scheduled
	stopReader    context.CancelFunc
}

// member is what the loop knows of another member of a group.
type member struct {
	lastAnnounce time.Time
	states       map[reconcile.Scope]remoteState
	// behindSince is, per scope, since when the member has announced a
	// root different from ours without being ahead of us.
	behindSince map[reconcile.Scope]time.Time
	lastSync    time.Time
	lastErr     string
}

// peerState is what the loop knows of a peer across groups.
type peerState struct {
	busy            bool
	failures        int
	backoffUntil    time.Time
	notSpeakerUntil time.Time
	// synced holds, per scope, our root and the peer's announced root
	// when a session last left us equal: a pull is pointless until one of
	// the two changes.
	synced      map[reconcile.Scope][2]prefix
	unsupported map[reconcile.Scope]bool
}

func newGroupState(g def, t Topic, now time.Time) *groupState {
	return &groupState{def: g, topic: t, joined: now,
		members: make(map[peer.ID]*member), recent: make(map[reconcile.Scope][]reconcile.Key),
		touched: make(map[reconcile.Scope]time.Time)}
}

// stop ends the group's timers, reader and topic.
func (g *groupState) stop() {
	for _, t := range []*time.Timer{g.announceTimer, g.startupTimer, g.pullTimer, g.recentTimer} {
		if t != nil {
			t.Stop()
		}
	}
	if g.stopReader != nil {
		g.stopReader()
	}
	_ = g.topic.Close()
}

func (s *Service) peer(p peer.ID) *peerState {
	ps := s.peers[p]
	if ps == nil {
		ps = &peerState{synced: make(map[reconcile.Scope][2]prefix), unsupported: make(map[reconcile.Scope]bool)}
		s.peers[p] = ps
	}
	return ps
}

// available reports whether a session with p may start now.
func (s *Service) available(p peer.ID) bool {
	ps := s.peer(p)
	now := s.cfg.now()
	return !ps.busy && !now.Before(ps.backoffUntil) && !now.Before(ps.notSpeakerUntil)
}
