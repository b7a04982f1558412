package gossip_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// manyScopes returns n scopes of one pubsub topic.
func manyScopes(n int) []reconcile.Scope {
	out := make([]reconcile.Scope, n)
	for i := range out {
		out[i] = scope(fmt.Sprintf("app%03d", i))
	}
	return out
}

// BenchmarkSteadyState measures what an in-sync group costs: 20 nodes on
// real TCP hosts on 127.0.0.1, each connected to 6 others, one group of
// 100 scopes holding the same messages everywhere. It reports the
// GossipSub bytes (announcements with all their framing and forwarding)
// per node per interval, sent and received, and checks that the sync
// protocol stays silent. Run it once: -benchtime 1x.
func BenchmarkSteadyState(b *testing.B) {
	const (
		nodes    = 20
		degree   = 6
		interval = time.Second
		measure  = 5 // intervals
	)
	scopes := manyScopes(100)
	g := gossip.Group{Name: "bench", Scopes: scopes}
	var msgs []reconcile.Message
	for i, sc := range scopes {
		for j := range 10 {
			msgs = append(msgs, message(sc, t0+int64(i*10+j)))
		}
	}
	counters := make([]*metrics.BandwidthCounter, nodes)
	var ns []*node.Node
	for i := range nodes {
		counters[i] = metrics.NewBandwidthCounter()
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.BandwidthReporter(counters[i]),
			libp2p.DisableRelay())
		require.NoError(b, err)
		b.Cleanup(func() { h.Close() })
		n, err := node.New(b.Context(), node.WithHost(h), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
			node.WithScopes(scopes...), node.WithGossipOptions(gossip.WithInterval(interval, 0.3)))
		require.NoError(b, err)
		b.Cleanup(func() { n.Close() })
		_, err = n.Put(b.Context(), msgs...)
		require.NoError(b, err)
		require.NoError(b, n.Join(b.Context(), g))
		ns = append(ns, n)
	}
	r := rand.New(rand.NewPCG(7, 7))
	for i, n := range ns {
		for _, j := range r.Perm(nodes)[:degree] {
			if j != i {
				o := ns[j].Host()
				require.NoError(b, n.Connect(b.Context(), peer.AddrInfo{ID: o.ID(), Addrs: o.Addrs()}))
			}
		}
	}
	for b.Loop() {
		time.Sleep(3 * interval) // meshes form, start-up sessions end
		before := snapshot(counters)
		sessionsBefore := sessions(b, ns)
		time.Sleep(measure * interval)
		after := snapshot(counters)
		require.Equal(b, sessionsBefore, sessions(b, ns), "sessions ran in an in-sync group")
		var in, out, sync int64
		for i := range nodes {
			in += after[i].gossipIn - before[i].gossipIn
			out += after[i].gossipOut - before[i].gossipOut
			sync += after[i].sync - before[i].sync
		}
		per := float64(nodes * measure)
		b.ReportMetric(float64(out)/per, "sent-bytes/node/interval")
		b.ReportMetric(float64(in)/per, "received-bytes/node/interval")
		b.ReportMetric(float64(sync)/per, "sync-bytes/node/interval")
		cs, err := ns[0].Gossip().Counters(b.Context())
		require.NoError(b, err)
		b.ReportMetric(float64(cs.AnnouncementBytes)/float64(cs.Announcements), "announcement-bytes")
	}
}

type traffic struct{ gossipIn, gossipOut, sync int64 }

// snapshot reads, per node, the bytes of GossipSub and of the sync
// protocols.
func snapshot(cs []*metrics.BandwidthCounter) []traffic {
	out := make([]traffic, len(cs))
	for i, c := range cs {
		for proto, st := range c.GetBandwidthByProtocol() {
			switch p := string(proto); {
			case strings.HasPrefix(p, "/meshsub/"):
				out[i].gossipIn += st.TotalIn
				out[i].gossipOut += st.TotalOut
			case strings.HasPrefix(p, "/storesync/"):
				out[i].sync += st.TotalIn + st.TotalOut
			}
		}
	}
	return out
}

func sessions(b *testing.B, ns []*node.Node) int {
	total := 0
	for _, n := range ns {
		cs, err := n.Gossip().Counters(b.Context())
		require.NoError(b, err)
		total += sum(cs.Sessions)
	}
	return total
}

// BenchmarkHeal measures the time a group of 20 nodes and 100 scopes
// takes to converge after a partition heals, in intervals, and the
// sessions that takes per node. Messages are put into random scopes at
// random nodes while the network is cut in two. Run it once: -benchtime 1x.
func BenchmarkHeal(b *testing.B) {
	const (
		nodes    = 20
		interval = time.Second
	)
	scopes := manyScopes(100)
	g := gossip.Group{Name: "bench", Scopes: scopes}
	for b.Loop() {
		c := newCluster(b, nodes, interval, func(int) []gossip.Group { return []gossip.Group{g} })
		time.Sleep(2 * interval)
		r := rand.New(rand.NewPCG(8, 8))
		part := make([]int, nodes)
		for i := range part {
			part[i] = i % 2
		}
		c.partition(b, part)
		for i := range 400 {
			_, err := c.nodes[r.IntN(nodes)].Put(b.Context(), message(scopes[r.IntN(len(scopes))], t0+int64(i)))
			require.NoError(b, err)
		}
		time.Sleep(2 * interval) // each half settles
		pre := counters(b, c)
		c.heal(b)
		healed := time.Now()
		for !allConverged(c, scopes) {
			require.Less(b, time.Since(healed), 10*interval, "no convergence")
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(healed)
		n := 0
		for i, cs := range counters(b, c) {
			n += sum(cs.Sessions) - sum(pre[i].Sessions)
		}
		b.ReportMetric(float64(took)/float64(interval), "intervals-to-converge")
		b.ReportMetric(float64(n)/nodes, "sessions/node")
	}
}

func allConverged(c *cluster, scopes []reconcile.Scope) bool {
	for _, sc := range scopes {
		if !c.converged(sc) {
			return false
		}
	}
	return true
}
