package protocol

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// limiter counts the streams a server runs, per peer and in total. A
// small leaf structure behind its own mutex.
type limiter struct {
	mu      sync.Mutex
	perPeer int
	total   int
	open    map[peer.ID]int
	all     int
}

func newLimiter(perPeer, total int) *limiter {
	return &limiter{perPeer: perPeer, total: total, open: make(map[peer.ID]int)}
}

// acquire takes a slot for p, or returns ErrTooManySessions or ErrBusy.
func (l *limiter) acquire(p peer.ID) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open[p] >= l.perPeer:
		return ErrTooManySessions
	case l.all >= l.total:
		return ErrBusy
	}
	l.open[p]++
	l.all++
	return nil
}

// release gives back a slot acquire took.
func (l *limiter) release(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[p]--; l.open[p] <= 0 {
		delete(l.open, p)
	}
	l.all--
}

// strikes counts the bad messages each peer sent; a peer with too many is
// refused for a while. A small leaf structure behind its own mutex.
type strikes struct {
	mu      sync.Mutex
	max     int
	refuse  time.Duration
	now     func() time.Time
	count   map[peer.ID]int
	refused map[peer.ID]time.Time
}

func newStrikes(max int, refuse time.Duration, now func() time.Time) *strikes {
	return &strikes{max: max, refuse: refuse, now: now,
		count: make(map[peer.ID]int), refused: make(map[peer.ID]time.Time)}
}

// add counts n bad messages from p and reports whether p is now refused.
func (s *strikes) add(p peer.ID, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[p] += n
	if s.count[p] >= s.max {
		delete(s.count, p)
		s.refused[p] = s.now().Add(s.refuse)
		return true
	}
	return false
}

// isRefused reports whether p is refused now.
func (s *strikes) isRefused(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.refused[p]
	if ok && !s.now().Before(until) {
		delete(s.refused, p)
		return false
	}
	return ok
}

// Strikes returns how many bad messages p has sent since it was last
// refused, and whether it is refused now.
func (s *Service) Strikes(p peer.ID) (int, bool) {
	refused := s.strikes.isRefused(p)
	s.strikes.mu.Lock()
	defer s.strikes.mu.Unlock()
	return s.strikes.count[p], refused
}
