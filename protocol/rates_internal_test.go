package protocol

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

// TestGlobalRateSparesLightPeers: peers that open streams as fast as
// they may empty the global bucket and are then refused by it; a peer
// that has used less than a quarter of its own rate is still served.
func TestGlobalRateSparesLightPeers(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRates(8, func() time.Time { return now })
	refusedByGlobal := 0
	for i := range 2 * globalRateFactor {
		p := peer.ID(fmt.Sprintf("greedy-%d", i))
		for range 8 {
			if err := r.take(p); err != nil {
				require.ErrorIs(t, err, ErrBusy)
				refusedByGlobal++
			}
		}
	}
	require.Positive(t, refusedByGlobal, "greedy peers meet the global bound")
	for i := range 3 {
		require.NoError(t, r.take("light"), "take %d: a peer with three quarters of its bucket left is served", i)
	}
	require.ErrorIs(t, r.take("light"), ErrBusy, "past a quarter of its own, the global bound applies to it too")
}
