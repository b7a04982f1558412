package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// modeLoad: one server node, in its own process, serving clients that
// catch up a scope of N messages and clients in sync that run sessions,
// first alone, then beside hostile peers.
const modeLoad = "load"

// insyncScope is the scope the in-sync clients hold in full, as the
// server does.
var insyncScope = reconcile.Scope{PubsubTopic: pubsubTopic, ContentTopic: "/storesync/1/bench-insync/proto"}

// serverSettle is how long after a load server is ready its clients
// start.
const serverSettle = 3 * time.Second

// insyncEvery is how often each in-sync client starts a session.
const insyncEvery = time.Second

// loadPhase is what one phase of -mode load measured.
type loadPhase struct {
	name      string
	hostile   int
	catchups  []float64 // seconds each catch-up client took
	sessions  []float64 // seconds of each in-sync session
	failures  int       // in-sync sessions that failed
	wall      float64   // seconds until every catch-up was done
	serverKiB int64     // the server process's peak RSS
	// attacks counts the attacks the hostile peers ran to their end, and
	// attackBytes what the server sent them.
	attacks     int
	attackBytes int64
}

// runLoad builds the server's store, then runs o.runs rounds of the
// phase without and the phase with hostile peers, alternating, each
// against a server process of its own, and prints the table of the
// rounds pooled: a p99 of one round's few hundred sessions is its second
// or third worst, which varies by half from round to round.
func runLoad(ctx context.Context, work string, o options) error {
	dir := filepath.Join(work, "load-server")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	insync, err := buildLoadServer(ctx, dir, o)
	if err != nil {
		return err
	}
	pooled := []loadPhase{{name: "honest clients alone"}, {name: fmt.Sprintf("with %d hostile peers", o.hostile), hostile: o.hostile}}
	for r := range o.runs {
		var round [2]loadPhase
		for i := range pooled {
			fmt.Fprintf(os.Stderr, "load round %d: %s\n", r+1, pooled[i].name)
			ph, err := runLoadPhase(ctx, work, dir, o, insync, pooled[i].hostile)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, pooled[i].name, err)
			}
			round[i] = ph
			pooled[i].merge(ph)
		}
		fmt.Fprintf(os.Stdout, "round %d: honest p99 with hostile peers / alone: catch-up %.2f, in-sync session %.2f (%.1f / %.1f ms)\n", r+1,
			quantile(round[1].catchups, 0.99)/quantile(round[0].catchups, 0.99),
			quantile(round[1].sessions, 0.99)/quantile(round[0].sessions, 0.99),
			1000*quantile(round[1].sessions, 0.99), 1000*quantile(round[0].sessions, 0.99))
	}
	printLoad(os.Stdout, o, pooled)
	return nil
}

// merge adds what another round of the same phase measured.
func (p *loadPhase) merge(q loadPhase) {
	p.catchups = append(p.catchups, q.catchups...)
	p.sessions = append(p.sessions, q.sessions...)
	p.failures += q.failures
	p.wall += q.wall
	p.serverKiB = max(p.serverKiB, q.serverKiB)
	p.attacks += q.attacks
	p.attackBytes += q.attackBytes
}

// buildLoadServer writes the server's store: o.n messages of benchScope
// and o.insyncN of insyncScope, which it returns.
func buildLoadServer(ctx context.Context, dir string, o options) ([]reconcile.Message, error) {
	d, err := node.OpenLevelDB(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	st, err := node.OpenStore(ctx, d)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	for _, sc := range []reconcile.Scope{benchScope, insyncScope} {
		if err := st.AddScope(ctx, sc); err != nil {
			return nil, err
		}
	}
	if _, err := timedLoad(ctx, newGenerator(o.seed, livePayloadSize, 1), o.n, ingestBatch, storePut(st)); err != nil {
		return nil, err
	}
	insync := make([]reconcile.Message, o.insyncN)
	newGenerator(o.seed+1, 64, 1).fill(insync)
	for i := range insync {
		insync[i].ContentTopic = insyncScope.ContentTopic
		insync[i].Payload = slices.Clone(insync[i].Payload)
	}
	return insync, storePut(st)(ctx, insync)
}

// runLoadPhase starts a server process on dir and, against it, a process
// of hostile peers, o.insync clients running sessions on insyncScope and o.clients
// clients catching up benchScope from empty, all at once; it ends when
// every catch-up has. Each in-sync client starts a session a second.
func runLoadPhase(ctx context.Context, work, dir string, o options, insync []reconcile.Message, hostiles int) (ph loadPhase, err error) {
	ph.hostile = hostiles
	server, err := startBackground(ctx, childArgs{kind: kindLoadServer, dir: dir, n: 1, timeout: o.timeout})
	if err != nil {
		return ph, err
	}
	defer func() {
		r := server.stop()
		ph.serverKiB = r.rssKiB
		if r.err != nil && err == nil {
			err = fmt.Errorf("server: %w", r.err)
		}
	}()
	srv, err := peer.AddrInfoFromString(server.ready.Addr)
	if err != nil {
		return ph, err
	}
	// The clients start serverSettle after the server is ready, in both
	// phases: its start-up work (warming its memos) is then behind it,
	// and the hostile peers, ready a second after they start, are under
	// way.
	settled := time.Now().Add(serverSettle)
	// The hostile peers run in a process of their own, as they would on
	// machines of their own: they share the cores with the clients, but
	// not the clients' Go scheduler.
	if hostiles > 0 {
		attackers, err := startBackground(ctx, childArgs{kind: kindLoadAttack, n: hostiles, sender: server.ready.Addr, timeout: o.timeout})
		if err != nil {
			return ph, err
		}
		defer func() {
			r := attackers.stop()
			ph.attacks, ph.attackBytes = r.res.Sessions, r.res.Bytes
			if r.err != nil && err == nil {
				err = fmt.Errorf("hostile peers: %w", r.err)
			}
		}()
	}

	var nodes []*node.Node
	defer func() {
		for _, n := range nodes {
			_ = n.Close()
		}
	}()
	start := func(opts ...node.Option) (*node.Node, error) {
		n, err := node.New(ctx, append(opts, node.WithListenAddrs(loopback))...)
		if err == nil {
			nodes = append(nodes, n)
			err = n.Connect(ctx, *srv)
		}
		return n, err
	}
	var syncers []*node.Node
	for range o.insync {
		n, err := start(node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())), node.WithScopes(insyncScope))
		if err != nil {
			return ph, err
		}
		if err := storePut(n.Store())(ctx, insync); err != nil {
			return ph, err
		}
		syncers = append(syncers, n)
	}
	var catchers []*node.Node
	for i := range o.clients {
		d, err := os.MkdirTemp(work, fmt.Sprintf("load-client-%d-", i))
		if err != nil {
			return ph, err
		}
		defer os.RemoveAll(d)
		n, err := start(node.WithDataDir(d), node.WithScopes(benchScope))
		if err != nil {
			return ph, err
		}
		catchers = append(catchers, n)
	}
	time.Sleep(time.Until(settled))
	var mu sync.Mutex
	stop := make(chan struct{})
	var loops sync.WaitGroup
	for _, n := range syncers {
		loops.Add(1)
		go func() {
			defer loops.Done()
			next := time.Now()
			for {
				// One session a second each: a member syncing with a
				// server every interval, many times faster than gossip's
				// default, and within the server's rates.
				select {
				case <-stop:
					return
				case <-time.After(time.Until(next)):
				}
				next = time.Now().Add(insyncEvery)
				t := time.Now()
				rep, err := n.SyncNow(ctx, srv.ID, insyncScope)
				d := time.Since(t).Seconds()
				mu.Lock()
				if err != nil || rep.Err() != nil {
					ph.failures++
				} else {
					ph.sessions = append(ph.sessions, d)
				}
				mu.Unlock()
			}
		}()
	}
	begin := time.Now()
	errs := make(chan error, len(catchers))
	for _, n := range catchers {
		go func() {
			t := time.Now()
			deadline := t.Add(o.timeout)
			for {
				if st, _ := n.Store().Stats(benchScope); st.Count >= uint64(o.n) {
					break
				}
				if time.Now().After(deadline) {
					errs <- errors.New("a catch-up did not finish within -timeout")
					return
				}
				if _, err := n.SyncNow(ctx, srv.ID, benchScope); err != nil {
					time.Sleep(100 * time.Millisecond) // busy, or refused: try again
				}
			}
			mu.Lock()
			ph.catchups = append(ph.catchups, time.Since(t).Seconds())
			mu.Unlock()
			errs <- nil
		}()
	}
	for range catchers {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	ph.wall = time.Since(begin).Seconds()
	close(stop)
	loops.Wait()
	return ph, err
}

// quantile returns the q-quantile of xs (nearest rank), 0 when empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// printLoad prints the phases side by side, with the hostile phase's
// honest p99s against the honest phase's.
func printLoad(w io.Writer, o options, ph []loadPhase) {
	fmt.Fprintf(w, "load: one server process; %d clients catch up a scope of %s messages of %d-byte payloads from empty, while %d clients in sync with a scope of %s run a session a second each\n",
		o.clients, thousands(float64(o.n)), livePayloadSize, o.insync, thousands(float64(o.insyncN)))
	fmt.Fprintf(w, "%-44s %22s %22s\n", "figure", ph[0].name, ph[1].name)
	row := func(name string, f func(p loadPhase) string) {
		fmt.Fprintf(w, "%-44s %22s %22s\n", name, f(ph[0]), f(ph[1]))
	}
	row("catch-up time p50 / p99 (s)", func(p loadPhase) string {
		return fmt.Sprintf("%.2f / %.2f", quantile(p.catchups, 0.5), quantile(p.catchups, 0.99))
	})
	row("catch-up throughput (msgs/s, all clients)", func(p loadPhase) string {
		return thousands(float64(o.n*o.clients*o.runs) / p.wall)
	})
	row("in-sync sessions a second", func(p loadPhase) string { return fmt.Sprintf("%.1f", float64(len(p.sessions))/p.wall) })
	row("in-sync session p50 / p99 (ms)", func(p loadPhase) string {
		return fmt.Sprintf("%.1f / %.1f", 1000*quantile(p.sessions, 0.5), 1000*quantile(p.sessions, 0.99))
	})
	row("in-sync sessions failed", func(p loadPhase) string { return fmt.Sprint(p.failures) })
	row("server peak RSS (MiB)", func(p loadPhase) string { return fmt.Sprintf("%.0f", float64(p.serverKiB)/1024) })
	row("attacks run a second", func(p loadPhase) string { return fmt.Sprintf("%.1f", float64(p.attacks)/p.wall) })
	row("bytes sent to hostile peers a second", func(p loadPhase) string { return thousands(float64(p.attackBytes) / p.wall) })
	fmt.Fprintf(w, "honest p99 with hostile peers / alone: catch-up %.2f, in-sync session %.2f (target ≤ 2)\n",
		quantile(ph[1].catchups, 0.99)/quantile(ph[0].catchups, 0.99), quantile(ph[1].sessions, 0.99)/quantile(ph[0].sessions, 0.99))
	for _, p := range ph {
		tag := "alone"
		if p.hostile > 0 {
			tag = "hostile"
		}
		fmt.Fprintf(w, "bench mode=load n=%d phase=%s catchup_p99_s=%.3f insync_p99_ms=%.1f sessions_per_s=%.1f server_rss_mib=%.0f\n",
			o.n, tag, quantile(p.catchups, 0.99), 1000*quantile(p.sessions, 0.99), float64(len(p.sessions))/p.wall, float64(p.serverKiB)/1024)
	}
}
