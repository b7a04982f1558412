package protocol

import (
	"errors"
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// volume bounds how many messages of a scope one peer may be sent, by
// catch-up and by fetch. An honest peer streams a scope about once: it
// resumes from its last key, and several peers share the parts of one
// scope; it fetches only what a session found missing. A peer that
// downloads a whole scope again and again, within the stream and fetch
// rates, would otherwise take as much of the server as every honest
// client together. Each peer has a debt of messages sent per scope,
// which decays with time constant window; a catch-up stream or a fetch
// request is served only while the debt is below factor times the
// scope's count, plus floor. A stream that starts may finish its range,
// so the debt can pass the bound by one stream's worth. A small leaf
// structure behind its own mutex; at most maxTracked debts are tracked,
// the least recently charged giving way, and one not charged for five
// windows (under 1 % of what it was) is forgotten.
type volume struct {
	mu     sync.Mutex
	factor float64 // 0: unlimited
	floor  float64
	window time.Duration
	now    func() time.Time
	debts  keyTimes[debtKey, float64] // as of the time set
}

// debtKey names one peer's debt for one scope.
type debtKey struct {
	peer  peer.ID
	scope reconcile.Scope
}

// errVolume is the detail of the ErrBusy a peer over its volume gets.
var errVolume = errors.New("sent too much of the scope lately")

func newVolume(factor float64, floor int, window time.Duration, now func() time.Time) *volume {
	return &volume{factor: factor, floor: float64(floor), window: window, now: now, debts: newKeyTimes[debtKey, float64]()}
}

// debt returns k's debt now. The caller holds mu.
func (v *volume) debt(k debtKey, now time.Time) float64 {
	d, at, ok := v.debts.getAt(k)
	if !ok {
		return 0
	}
	return d * math.Exp(-now.Sub(at).Seconds()/v.window.Seconds())
}

// admit returns an error wrapping ErrBusy if p may not be sent more of
// sc, which holds count messages.
func (v *volume) admit(p peer.ID, sc reconcile.Scope, count uint64) error {
	if v == nil || v.factor == 0 {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	v.debts.expire(now.Add(-5 * v.window))
	if v.debt(debtKey{p, sc}, now) >= v.factor*float64(count)+v.floor {
		return errors.Join(ErrBusy, errVolume)
	}
	return nil
}

// charge adds n messages of sc sent to p to its debt.
func (v *volume) charge(p peer.ID, sc reconcile.Scope, n int) {
	if v == nil || v.factor == 0 || n <= 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	k := debtKey{p, sc}
	v.debts.set(k, v.debt(k, now)+float64(n), now, maxTracked)
}
