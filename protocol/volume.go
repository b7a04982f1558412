package protocol

import (
	"errors"
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// volume bounds how many messages one peer may have streamed to it by
// catch-up. An honest peer streams a scope about once: it resumes from
// its last key, and several peers share the parts of one scope. A peer
// that downloads a whole scope again and again, within the stream rate,
// would otherwise take as much of the server as every honest client
// together. Each peer has a debt of messages sent, which decays with
// time constant window; a stream starts only while the debt is below
// factor times the count of the scope asked for, plus volumeFloor. A
// stream that starts may finish its range, so the debt can pass the
// bound by one stream's worth. A small leaf structure behind its own
// mutex; at most maxTracked peers are tracked, the least recently
// charged giving way, and a peer not charged for five windows (its debt
// under 1 %) is forgotten.
type volume struct {
	mu     sync.Mutex
	factor float64 // 0: unlimited
	window time.Duration
	now    func() time.Time
	peers  peerTimes[float64] // debt as of the time set
}

// volumeFloor is the debt every peer may have whatever the scope's size:
// small scopes may be streamed many times over.
const volumeFloor = 10_000

// errVolume is the detail of the ErrBusy a stream over its volume gets.
var errVolume = errors.New("streamed the scope too often lately")

func newVolume(factor float64, window time.Duration, now func() time.Time) *volume {
	return &volume{factor: factor, window: window, now: now, peers: newPeerTimes[float64]()}
}

// debt returns p's debt now. The caller holds mu.
func (v *volume) debt(p peer.ID, now time.Time) float64 {
	d, at, ok := v.peers.getAt(p)
	if !ok {
		return 0
	}
	return d * math.Exp(-now.Sub(at).Seconds()/v.window.Seconds())
}

// admit returns an error wrapping ErrBusy if p may not start a stream of
// a scope of count messages.
func (v *volume) admit(p peer.ID, count uint64) error {
	if v == nil || v.factor == 0 {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	v.peers.expire(now.Add(-5 * v.window))
	if v.debt(p, now) >= v.factor*float64(count)+volumeFloor {
		return errors.Join(ErrBusy, errVolume)
	}
	return nil
}

// charge adds n messages sent to p's debt.
func (v *volume) charge(p peer.ID, n int) {
	if v == nil || v.factor == 0 || n <= 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	v.peers.set(p, v.debt(p, now)+float64(n), now, maxTracked)
}
