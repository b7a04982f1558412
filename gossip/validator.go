package gossip

import (
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// validator checks announcements of one group before GossipSub delivers
// or forwards them: size, decoding, scopes of the group, allow-list, and
// a rate per author. It runs on pubsub's validation goroutines, so its
// small rate map has a mutex of its own.
type validator struct {
	group   *def
	maxSize int
	every   time.Duration // an author may announce this often on average
	burst   float64
	now     func() time.Time
	self    peer.ID

	mu      sync.Mutex
	buckets map[peer.ID]*bucket
}

// bucket is a token bucket: tokens refill at one per `every`.
type bucket struct {
	tokens float64
	at     time.Time
}

func newValidator(g *def, maxSize int, interval time.Duration, self peer.ID, now func() time.Time) *validator {
	// An honest member announces once an interval, plus early
	// announcements at most a quarter interval apart (announceSoon) and
	// recent hashes: up to five an interval. The allowance, six an
	// interval with a burst of six, sits above that, so that churn never
	// makes honest announcements wait.
	return &validator{group: g, maxSize: maxSize, every: interval / 6, burst: 6,
		now: now, self: self, buckets: make(map[peer.ID]*bucket)}
}

// validate is the topic validator.
func (v *validator) validate(from peer.ID, data []byte) error {
	if !v.group.allows(from) {
		return fmt.Errorf("%w: %s is not in the private group", errBadAnnouncement, from)
	}
	if from != v.self && !v.take(from) {
		return errRate
	}
	_, err := decodeAnnouncement(data, v.group, v.maxSize)
	return err
}

var errRate = fmt.Errorf("%w: author announces too often", errBadAnnouncement)

// take spends a token of p's bucket.
func (v *validator) take(p peer.ID) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	b := v.buckets[p]
	if b == nil {
		if len(v.buckets) > 1<<14 {
			v.buckets = make(map[peer.ID]*bucket) // forget idle authors
		}
		b = &bucket{tokens: v.burst, at: now}
		v.buckets[p] = b
	}
	b.tokens = min(v.burst, b.tokens+float64(now.Sub(b.at))/float64(v.every))
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
