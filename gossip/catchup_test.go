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
		const interval = 2 * time.Second
		// Node 3 joins later, once members 0 to 2 hold the scope. Its
		// start-up sync runs a twentieth of an interval after it joins,
		// before any pull: a pull waits for an announcement and then
		// for a random part of the spread, and could come while only
		// one member has announced, with no other to stream from.
		c := newCluster(t, 4, interval, func(i int) []gossip.Group {
			if i == 3 {
				return nil
			}
			return []gossip.Group{g}
		}, gossip.WithCatchUpFrom(1000), gossip.WithStartup(3, interval/20))
		msgs := make([]reconcile.Message, 6000)
		for i := range msgs {
			msgs[i] = message(big, t0+int64(i)*1e6)
		}
		for _, n := range c.nodes[:3] {
			_, err := n.Store().Put(t.Context(), msgs...)
			require.NoError(t, err)
		}
		time.Sleep(interval) // the members announce
		require.NoError(t, c.nodes[3].Join(t.Context(), g))
		within(t, 6*interval, func() bool { return c.converged(big) })
		counts, err := c.nodes[3].Gossip().Counters(t.Context())
		require.NoError(t, err)
		require.Positive(t, counts.CatchUps, "the empty member streamed from several at once")
		require.Zero(t, counts.Sessions[gossip.TriggerAnnouncement], "the empty member pulled before its start-up sync")
		_, n, _ := root(c.nodes[3], big)
		require.EqualValues(t, len(msgs), n)
	})
}
