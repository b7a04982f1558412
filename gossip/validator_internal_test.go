package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

// TestRateCannotBeReset: an author that spent its burst stays limited
// while a flood of new authors fills the validator's map, the map never
// grows past its bound, and idle authors are forgotten to make room.
func TestRateCannotBeReset(t *testing.T) {
	now := time.Unix(1000, 0)
	v := newValidator(&def{}, 64<<10, 60*time.Second, "self", func() time.Time { return now })
	flooder := peer.ID("flooder")
	for range 6 {
		require.Equal(t, withinRate, v.take(flooder))
	}
	for range floodDebt {
		require.Equal(t, overRate, v.take(flooder), "past the burst: dropped, not yet flooding")
	}
	require.Equal(t, flooding, v.take(flooder))
	for i := range 3 * maxBuckets {
		v.take(peer.ID(fmt.Sprintf("sybil-%d", i)))
		require.LessOrEqual(t, len(v.buckets), maxBuckets)
	}
	require.Equal(t, flooding, v.take(flooder), "a flood of new authors does not reset the flooder's bucket")
	// Once the map's authors are idle long enough to be full again, they
	// are forgotten for new ones, and the flooder has its allowance back.
	now = now.Add(2 * time.Minute)
	require.Equal(t, withinRate, v.take("newcomer"))
	require.Less(t, len(v.buckets), maxBuckets)
	now = now.Add(5 * time.Minute) // the flooder's debt refills too
	require.Equal(t, withinRate, v.take(flooder))
}
