package protocol

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// TestVolumeBoundsDecaysAndForgets: a peer's debt for a scope admits
// streams while it is below factor × count + the floor, is its own for
// each scope, decays with the window's time constant, and is forgotten
// after five windows; at most maxTracked debts are held.
func TestVolumeBoundsDecaysAndForgets(t *testing.T) {
	now := time.Unix(1000, 0)
	const floor = 1000
	v := newVolume(2, floor, time.Minute, func() time.Time { return now })
	a, b := reconcile.Scope{PubsubTopic: "/p", ContentTopic: "/a"}, reconcile.Scope{PubsubTopic: "/p", ContentTopic: "/b"}
	const count = 100_000
	bound := 2*count + floor
	require.NoError(t, v.admit("p", a, count))
	v.charge("p", a, bound-1)
	require.NoError(t, v.admit("p", a, count), "one message below the bound")
	v.charge("p", a, 1)
	require.ErrorIs(t, v.admit("p", a, count), ErrBusy)
	require.NoError(t, v.admit("p", a, 10*count), "a larger scope has a larger bound")
	require.NoError(t, v.admit("p", b, count), "another scope of the peer's owes nothing")
	require.NoError(t, v.admit("q", a, count), "another peer owes nothing")

	now = now.Add(time.Minute) // the debt falls to 1/e
	require.NoError(t, v.admit("p", a, count))
	v.mu.Lock()
	d := v.debt(debtKey{"p", a}, now)
	v.mu.Unlock()
	require.InDelta(t, float64(bound)/2.718281828, d, 1)

	now = now.Add(6 * time.Minute)
	require.NoError(t, v.admit("p", a, 0))
	require.Zero(t, len(v.debts.items), "forgotten after five windows")

	for i := range maxTracked + 10 {
		v.charge(peer.ID(fmt.Sprint(i)), a, 1)
	}
	require.Len(t, v.debts.items, maxTracked)

	var off *volume
	require.NoError(t, off.admit("p", a, 0))
	off.charge("p", a, 1)
	unlimited := newVolume(0, 0, time.Minute, time.Now)
	unlimited.charge("p", a, 1<<40)
	require.NoError(t, unlimited.admit("p", a, 0))
}
