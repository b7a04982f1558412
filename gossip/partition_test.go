package gossip_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/reconcile"
)

// partition cuts the cluster into parts: no link and no connection
// between nodes of different parts.
func (c *cluster) partition(t testing.TB, part []int) {
	t.Helper()
	hs := c.mn.Hosts()
	for i := range hs {
		for j := i + 1; j < len(hs); j++ {
			if part[i] != part[j] {
				_ = c.mn.DisconnectPeers(hs[i].ID(), hs[j].ID())
				_ = c.mn.UnlinkPeers(hs[i].ID(), hs[j].ID())
			}
		}
	}
}

// heal links and connects every pair again.
func (c *cluster) heal(t testing.TB) {
	t.Helper()
	require.NoError(t, c.mn.LinkAll())
	require.NoError(t, c.mn.ConnectAllButSelf())
}

// TestPartitionsHeal is the many-node convergence test: 30 nodes in one
// group with two scopes; messages are put at random nodes while the
// network is cut into random partitions, three times over; after each
// heal every node's root equals every other's within 3 gossip intervals,
// and the sessions per node per interval stay bounded.
//
// It runs in a synctest bubble (inBubble): the intervals are the
// service's own, so a loaded machine stretches the test's run time, not
// the intervals it measures. Under the race detector, which makes every
// signature check and session several times dearer and runs the bubble
// on one P, 12 nodes take the place of 30.
func TestPartitionsHeal(t *testing.T) {
	if testing.Short() {
		t.Skip("30 nodes")
	}
	inBubble(t, testPartitionsHeal)
}

func testPartitionsHeal(t *testing.T) {
	const interval = 600 * time.Millisecond
	nodes := 30
	if raceEnabled {
		nodes = 12
	}
	a, b := scope("alpha"), scope("beta")
	g := gossip.Group{Name: "app", Scopes: []reconcile.Scope{a, b}}
	c := newCluster(t, nodes, interval, func(int) []gossip.Group { return []gossip.Group{g} })
	r := rand.New(rand.NewPCG(41, 42))
	ts := t0
	start := time.Now()
	for round := range 3 {
		parts := 2 + r.IntN(3)
		part := make([]int, nodes)
		for i := range part {
			part[i] = r.IntN(parts)
		}
		c.partition(t, part)
		for range 4 {
			for range 15 {
				sc := []reconcile.Scope{a, b}[r.IntN(2)]
				ts++
				_, err := c.nodes[r.IntN(nodes)].Put(t.Context(), message(sc, ts))
				require.NoError(t, err)
			}
			time.Sleep(interval / 2)
		}
		pre := counters(t, c)
		c.heal(t)
		took := within(t, 3*interval, func() bool { return c.converged(a) && c.converged(b) },
			"round %d: not converged within 3 intervals of the heal", round)
		healing := 0
		for i, cs := range counters(t, c) {
			healing += sum(cs.Sessions) - sum(pre[i].Sessions)
		}
		t.Logf("round %d: %d parts, converged %v after the heal (%.1f intervals), %.1f sessions per node to get there",
			round, parts, took.Round(time.Millisecond), float64(took)/float64(interval), float64(healing)/float64(nodes))
	}
	_, count, _ := root(c.nodes[0], a)
	_, countB, _ := root(c.nodes[0], b)
	require.EqualValues(t, ts-t0, count+countB)

	intervals := float64(time.Since(start)) / float64(interval)
	most, mostPulls, total := 0, 0, 0
	byTrigger := map[string]int{}
	failed := 0
	for _, cs := range counters(t, c) {
		failed += cs.Failed
		for k, v := range cs.Sessions {
			byTrigger[k] += v
		}
		n := sum(cs.Sessions)
		total += n
		most = max(most, n)
		mostPulls = max(mostPulls, cs.Sessions[gossip.TriggerAnnouncement])
	}
	perNode := float64(total) / float64(nodes) / intervals
	t.Logf("sessions by trigger: %v, %d failed", byTrigger, failed)
	t.Logf("sessions: %.2f per node per interval on average, the busiest node %.2f (%d sessions, %.0f intervals)",
		perNode, float64(most)/intervals, total, intervals)
	// Pulls of a group are a quarter interval apart at least, so no node
	// starts more than four an interval (one more at the edges), whatever
	// the churn. Its 3 start-up sessions come on top: the run is about 10
	// intervals of fake time, too short to fold them into the rate.
	require.LessOrEqual(t, mostPulls, int(4*intervals)+1, "pulls closer than a quarter interval")
}
