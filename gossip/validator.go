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
	swept   time.Time // when full buckets were last forgotten
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
	if from != v.self {
		switch v.take(from) {
		case overRate:
			return errRate
		case flooding:
			return errFlood
		}
	}
	_, err := decodeAnnouncement(data, v.group, v.maxSize)
	return err
}

var (
	// errRate: the author has spent its allowance. GossipSub may deliver
	// an honest author's announcements in a burst (its gossip repairs
	// what a partition or a slow link held back), so such an
	// announcement is dropped, not held against anyone.
	errRate = fmt.Errorf("%w: author announces too often", errBadAnnouncement)
	// errFlood: the author is far past its allowance (floodDebt
	// announcements beyond it, unrefilled), which no delivery burst
	// explains.
	errFlood = fmt.Errorf("%w: author floods its announcements", errBadAnnouncement)
)

// Outcomes of take.
const (
	withinRate = iota
	overRate
	flooding
)

// floodDebt is how many announcements past its allowance an author may
// owe (each refills at the allowed rate) before it counts as flooding:
// four intervals' worth.
const floodDebt = 24

// maxBuckets bounds the authors whose rate a validator tracks at once.
const maxBuckets = 1 << 14

// take spends a token of p's bucket and says whether p is within its
// rate, over it, or flooding: an announcement over the rate still spends
// a token, down to floodDebt below empty, so that only an author that
// keeps sending past its allowance floods. A full bucket is the same as
// none, so when the map is full only full buckets are forgotten: a flood
// of new authors can neither reset the bucket of one that is flooding
// nor grow the map; while every tracked author is busy, new ones wait.
func (v *validator) take(p peer.ID) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	b := v.buckets[p]
	if b == nil {
		if len(v.buckets) >= maxBuckets {
			// Sweeping is O(maxBuckets): at most once a refill time.
			if now.Sub(v.swept) < v.every {
				return overRate
			}
			v.swept = now
			for q, o := range v.buckets {
				if v.refilled(o, now) >= v.burst {
					delete(v.buckets, q)
				}
			}
			if len(v.buckets) >= maxBuckets {
				return overRate
			}
		}
		b = &bucket{tokens: v.burst, at: now}
		v.buckets[p] = b
	}
	b.tokens, b.at = v.refilled(b, now), now
	switch {
	case b.tokens >= 1:
		b.tokens--
		return withinRate
	case b.tokens > -floodDebt:
		b.tokens--
		return overRate
	}
	return flooding
}

// refilled returns b's tokens at now.
func (v *validator) refilled(b *bucket, now time.Time) float64 {
	return min(v.burst, b.tokens+float64(now.Sub(b.at))/float64(v.every))
}
