package gossip_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/reconcile"
)

// TestEmptyMemberStreamsFromSeveral: a member that joins a group holding
// nothing of a large scope streams it from several members at once
// (its start-up sync), and ends with their root.
func TestEmptyMemberStreamsFromSeveral(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		big := scope("big")
		g := gossip.Group{Name: "big", Scopes: []reconcile.Scope{big}}
		interval := 2 * time.Second
		c := newCluster(t, 4, interval, func(int) []gossip.Group { return []gossip.Group{g} }, gossip.WithCatchUpFrom(1000))
		// Members 0 to 2 hold the scope before the start-up syncs run (a
		// quarter interval after joining); member 3 holds nothing.
		msgs := make([]reconcile.Message, 6000)
		for i := range msgs {
			msgs[i] = message(big, t0+int64(i)*1e6)
		}
		for _, n := range c.nodes[:3] {
			_, err := n.Store().Put(t.Context(), msgs...)
			require.NoError(t, err)
		}
		require.Eventually(t, func() bool { return c.converged(big) }, 6*interval, 20*time.Millisecond)
		counts, err := c.nodes[3].Gossip().Counters(t.Context())
		require.NoError(t, err)
		require.Positive(t, counts.CatchUps, "the empty member streamed from several at once")
		_, n, _ := root(c.nodes[3], big)
		require.EqualValues(t, len(msgs), n)
	})
}
