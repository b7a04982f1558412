package protocol

import (
	"container/list"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// limiter counts the streams a server runs, per peer and in total, and
// bounds how often they start (rates). A small leaf structure behind its
// own mutex.
type limiter struct {
	mu      sync.Mutex
	perPeer int
	total   int
	open    map[peer.ID]int
	all     int
	rate    *rates
}

func newLimiter(perPeer, total int, rate *rates) *limiter {
	return &limiter{perPeer: perPeer, total: total, open: make(map[peer.ID]int), rate: rate}
}

// acquire takes a slot for p, or returns ErrTooManySessions or ErrBusy
// (too many streams open in all, or started this minute).
func (l *limiter) acquire(p peer.ID) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open[p] >= l.perPeer:
		return ErrTooManySessions
	case l.all >= l.total:
		return ErrBusy
	}
	if err := l.rate.take(p); err != nil {
		return err
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
// refused for a while. A peer's count is forgotten once it has sent no
// bad message for that while. At most maxTracked peers are counted, and
// as many refused: each is kept in the order of its last change, so that
// the expired ones, and when the bound is met the least recent one, go
// first, in O(1) a peer. A small leaf structure behind its own mutex.
type strikes struct {
	mu      sync.Mutex
	max     int
	refuse  time.Duration
	now     func() time.Time
	count   peerTimes[int]       // strikes, by the time of the last
	refused peerTimes[time.Time] // until when, by the time of refusal
}

// maxTracked bounds the peers strikes counts, and those it refuses.
const maxTracked = 1 << 14

func newStrikes(max int, refuse time.Duration, now func() time.Time) *strikes {
	return &strikes{max: max, refuse: refuse, now: now, count: newPeerTimes[int](), refused: newPeerTimes[time.Time]()}
}

// add counts n bad messages from p and reports whether p is now refused.
func (s *strikes) add(p peer.ID, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.count.expire(now.Add(-s.refuse))
	s.refused.expire(now.Add(-s.refuse))
	c, _ := s.count.get(p)
	if c += n; c >= s.max {
		s.count.remove(p)
		s.refused.set(p, now.Add(s.refuse), now, maxTracked)
		return true
	}
	s.count.set(p, c, now, maxTracked)
	return false
}

// isRefused reports whether p is refused now.
func (s *strikes) isRefused(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.refused.get(p)
	if ok && !s.now().Before(until) {
		s.refused.remove(p)
		return false
	}
	return ok
}

// keyTimes maps keys (peers, or a peer and a scope) to values, in the
// order of the time each was last set.
type keyTimes[K comparable, V any] struct {
	items map[K]*list.Element
	order list.List // of *keyTime[K, V], least recently set first
}

// peerTimes is keyTimes by peer.
type peerTimes[V any] = keyTimes[peer.ID, V]

type keyTime[K comparable, V any] struct {
	k  K
	v  V
	at time.Time
}

func newKeyTimes[K comparable, V any]() keyTimes[K, V] {
	return keyTimes[K, V]{items: make(map[K]*list.Element)}
}

func newPeerTimes[V any]() peerTimes[V] { return newKeyTimes[peer.ID, V]() }

func (m *keyTimes[K, V]) get(k K) (V, bool) {
	v, _, ok := m.getAt(k)
	return v, ok
}

// getAt returns k's value and when it was set.
func (m *keyTimes[K, V]) getAt(k K) (V, time.Time, bool) {
	if el, ok := m.items[k]; ok {
		e := el.Value.(*keyTime[K, V])
		return e.v, e.at, true
	}
	var zero V
	return zero, time.Time{}, false
}

// set sets k's value as of at (not before the last set of any key),
// first forgetting the least recently set key when bound keys are held.
func (m *keyTimes[K, V]) set(k K, v V, at time.Time, bound int) {
	if el, ok := m.items[k]; ok {
		e := el.Value.(*keyTime[K, V])
		e.v, e.at = v, at
		m.order.MoveToBack(el)
		return
	}
	if len(m.items) >= bound {
		m.remove(m.order.Front().Value.(*keyTime[K, V]).k)
	}
	m.items[k] = m.order.PushBack(&keyTime[K, V]{k: k, v: v, at: at})
}

func (m *keyTimes[K, V]) remove(k K) {
	if el, ok := m.items[k]; ok {
		m.order.Remove(el)
		delete(m.items, k)
	}
}

// expire forgets the keys last set before cutoff.
func (m *keyTimes[K, V]) expire(cutoff time.Time) {
	for el := m.order.Front(); el != nil && el.Value.(*keyTime[K, V]).at.Before(cutoff); el = m.order.Front() {
		m.remove(el.Value.(*keyTime[K, V]).k)
	}
}

// Strikes returns how many bad messages p has sent since it was last
// refused, and whether it is refused now.
func (s *Service) Strikes(p peer.ID) (int, bool) {
	refused := s.strikes.isRefused(p)
	s.strikes.mu.Lock()
	defer s.strikes.mu.Unlock()
	s.strikes.count.expire(s.strikes.now().Add(-s.strikes.refuse))
	n, _ := s.strikes.count.get(p)
	return n, refused
}
