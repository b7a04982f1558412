package protocol

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

// TestStrikesAgeAndStayBounded: a peer's strikes are forgotten once it
// has sent nothing bad for the refusal time; a flood of peers with one
// strike each never grows the maps past their bound, and neither erases
// a refusal in force nor the strikes of a peer striking now.
func TestStrikesAgeAndStayBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newStrikes(4, 10*time.Minute, func() time.Time { return now })
	require.False(t, s.add("slow", 3))
	now = now.Add(11 * time.Minute)
	require.False(t, s.add("slow", 3), "strikes older than the refusal time are forgotten")
	require.True(t, s.add("bad", 4))

	for i := range 2 * maxTracked {
		now = now.Add(time.Millisecond)
		s.add(peer.ID(fmt.Sprintf("sybil-%d", i)), 1)
		if i == maxTracked {
			require.False(t, s.add("slow", 0), "a recent striker is not the one evicted")
		}
		require.LessOrEqual(t, len(s.count.items), maxTracked)
	}
	require.True(t, s.isRefused("bad"), "a refusal in force survives the flood")
	require.LessOrEqual(t, len(s.refused.items), maxTracked)
}
