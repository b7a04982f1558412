package protocol

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

// TestVolumeBoundsDecaysAndForgets: the debt admits streams while it is
// below factor × count + the floor, decays with the window's time
// constant, and is forgotten after five windows; at most maxTracked
// peers are held.
func TestVolumeBoundsDecaysAndForgets(t *testing.T) {
	now := time.Unix(1000, 0)
	v := newVolume(2, time.Minute, func() time.Time { return now })
	const count = 100_000
	bound := 2*count + volumeFloor
	require.NoError(t, v.admit("p", count))
	v.charge("p", bound-1)
	require.NoError(t, v.admit("p", count), "one message below the bound")
	v.charge("p", 1)
	require.ErrorIs(t, v.admit("p", count), ErrBusy)
	require.NoError(t, v.admit("p", 10*count), "a larger scope has a larger bound")
	require.NoError(t, v.admit("q", count), "another peer owes nothing")

	now = now.Add(time.Minute) // the debt falls to 1/e
	require.NoError(t, v.admit("p", count))
	v.mu.Lock()
	d := v.debt("p", now)
	v.mu.Unlock()
	require.InDelta(t, float64(bound)/2.718281828, d, 1)

	now = now.Add(6 * time.Minute)
	require.NoError(t, v.admit("p", 0))
	require.Zero(t, len(v.peers.items), "forgotten after five windows")

	for i := range maxTracked + 10 {
		v.charge(peer.ID(fmt.Sprint(i)), 1)
	}
	require.Len(t, v.peers.items, maxTracked)

	var off *volume
	require.NoError(t, off.admit("p", 0))
	off.charge("p", 1)
	unlimited := newVolume(0, time.Minute, time.Now)
	unlimited.charge("p", 1<<40)
	require.NoError(t, unlimited.admit("p", 0))
}
