package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// senderNode starts an in-process node holding n messages of the demo
// scope, 256-byte random payloads, for a child process to catch up from.
// Its catch-up volume is not bounded: a receiver killed twenty times in
// a minute is sent again, each time, what was in flight when it died,
// which the default bound (the scope once and 100,000 messages more in
// ten minutes) would refuse after a few kills.
func senderNode(t *testing.T, n int) (*node.Node, reconcile.Scope) {
	t.Helper()
	sc := reconcile.Scope{PubsubTopic: defaultPubsubTopic, ContentTopic: cliTopic}
	s, err := node.New(t.Context(), node.WithDataDir(t.TempDir()), node.WithListenAddrs("/ip4/127.0.0.1/tcp/0"),
		node.WithScopes(sc), node.WithProtocolOptions(protocol.WithCatchUpVolume(0, 0, time.Minute)))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	// At most a second between messages, all of them in the past.
	ts := time.Now().Add(-time.Duration(n)*time.Second - time.Hour).UnixNano()
	batch := make([]reconcile.Message, 0, 4096)
	for i := range n {
		p := make([]byte, 256)
		_, _ = crand.Read(p)
		ts += 1 + rand.Int64N(1e9)
		batch = append(batch, reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: p, Timestamp: ts})
		if len(batch) == cap(batch) || i == n-1 {
			_, err := s.Put(t.Context(), batch...)
			require.NoError(t, err)
			batch = batch[:0]
		}
	}
	return s, sc
}

// countOf returns the message count of the receiver's only scope, with
// what a bulk load has stored of it so far, or -1 while its control
// socket does not answer.
func countOf(ctx context.Context, dir string) int {
	c, err := newControlClient(dir)
	if err != nil {
		return -1
	}
	var st statusResponse
	if c.call(ctx, http.MethodGet, "/status", nil, &st) != nil || len(st.Scopes) != 1 {
		return -1
	}
	return int(st.Scopes[0].Count + st.Scopes[0].Loading)
}

// killPast waits until the node's scope holds (or loads) more than
// count messages, waits jitter more, and kills it with SIGKILL.
func killPast(t *testing.T, p *nodeProc, count int, jitter time.Duration) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for c := countOf(t.Context(), p.dir); c <= count && time.Now().Before(deadline); c = countOf(t.Context(), p.dir) {
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(jitter)
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
}

// TestCatchUpSurvivesKills: an empty node started with --peer catches up
// a scope of many batches; it is killed with SIGKILL at random moments
// twenty times, each time after at least one more batch has committed,
// and restarted on the same data folder. It ends with the sender's count
// and root, and its store passes the full verification on reopen: no
// message lost, none stored twice, tree and messages in agreement.
func TestCatchUpSurvivesKills(t *testing.T) {
	bin := storesyncBinary(t)
	// A batch is 1 MiB, about 3,800 of these messages (sent without
	// their topics): each run commits one or two of them before it is
	// killed, and the last run the rest.
	n, kills := 200_000, 20
	if raceEnabled() {
		// Sender and child run several times slower under the race
		// detector: a quarter of the scope and five kills take the same
		// paths; the plain run makes the twenty.
		n, kills = 50_000, 5
	}
	sender, sc := senderNode(t, n)
	want, _ := sender.Store().Stats(sc)
	addr := sender.Addrs()[0].String()
	dir := filepath.Join(t.TempDir(), "receiver")
	args := []string{"--content-topic", cliTopic, "--peer", addr}

	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	last, stored, midway := 0, 0, 0
	for kill := range kills {
		// Wait for one more batch to commit, then a random moment more
		// (while the next batch arrives, is checked or is stored), and
		// kill.
		killPast(t, startNode(t, bin, dir, args...), last, time.Duration(r.IntN(30))*time.Millisecond)
		got := countOf(t.Context(), dir) // the socket is stale: -1
		require.Equal(t, -1, got)
		// What survived is whatever committed before the kill.
		var stats node.ScopeStats
		withDataFolder(t, dir, func(d ds.Batching, st *node.Store) {
			stats, _ = st.Stats(sc)
			if stats.Count > 0 && int(stats.Count) < n {
				midway++
				require.NotEmpty(t, keysUnder(t, d, catchUpCursors), "kill %d: midway, the cursor is stored", kill)
			}
		})
		require.GreaterOrEqual(t, int(stats.Count), last, "kill %d: a committed batch was lost", kill)
		require.Greater(t, int(stats.Count), stored, "kill %d: the catch-up made no progress", kill)
		last, stored = int(stats.Count), int(stats.Count)
		t.Logf("kill %d: %d of %d messages stored", kill, last, n)
	}
	require.GreaterOrEqual(t, midway, kills/2, "most kills must land in the middle of the catch-up")

	finishCatchUp(t, bin, dir, args, sc, want)
}

// finishCatchUp restarts the node in dir and waits until its scope holds
// want's count, then checks its root, live and, stopped, in its store
// opened with full verification, which keeps no catch-up cursor.
func finishCatchUp(t *testing.T, bin, dir string, args []string, sc reconcile.Scope, want node.ScopeStats) {
	t.Helper()
	p := startNode(t, bin, dir, args...)
	require.Eventually(t, func() bool { return countOf(t.Context(), dir) == int(want.Count) }, 60*time.Second, 20*time.Millisecond)
	st := status(t, bin, dir)
	require.Equal(t, hex.EncodeToString(want.Root[:]), st.Scopes[0].Root)
	p.stop(t)

	withDataFolder(t, dir, func(d ds.Batching, s *node.Store) {
		got, _ := s.Stats(sc)
		require.Equal(t, want.Count, got.Count)
		require.Equal(t, want.Root, got.Root)
		require.Empty(t, keysUnder(t, d, catchUpCursors), "the finished catch-up left no cursor")
	}, node.WithVerifyOnOpen(true))
}
