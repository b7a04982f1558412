package node_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// smallStreams makes catch-up batches of 64 KiB: a scope of 20,000 small
// messages streams in about ten of them.
var smallStreams = node.WithProtocolOptions(protocol.WithBatchLimits(1024, 64<<10), protocol.WithMaxMessageSize(1024))

// TestCatchUpIntoAnEmptyScopeIsOneLoad: the catch-up of an empty scope is
// a bulk load: while it runs, the scope's count stays where it was and
// Loading counts what it stored; at its end the scope holds exactly the
// peer's messages, with its tree written in mid-load as well as at the
// end, no cursor is left, and the store verifies on reopen.
func TestCatchUpIntoAnEmptyScopeIsOneLoad(t *testing.T) {
	node.SetBulkNodeBytes(t, 8<<10)
	a := startNode(t, t.TempDir(), smallStreams)
	defer a.Close()
	dirB := t.TempDir()
	b := startNode(t, dirB, smallStreams)
	msgs := fill(t, a, chatScope, 20_000, 3)
	require.NoError(t, b.Connect(t.Context(), info(a)))

	var mu sync.Mutex
	var seen []node.ScopeStats
	ctx := protocol.WithProgress(t.Context(), func(p protocol.Progress) {
		st, _ := b.Store().Stats(chatScope)
		mu.Lock()
		seen = append(seen, st)
		mu.Unlock()
	})
	rep, err := b.SyncNow(ctx, a.Host().ID(), chatScope)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	require.Equal(t, 20_000, rep.Scopes[0].Streamed)
	require.Greater(t, len(seen), 5)
	for _, st := range seen[:len(seen)-1] {
		require.Zero(t, st.Count, "the load's messages are not in the count before it ends")
	}
	require.True(t, slices.IsSortedFunc(seen, func(x, y node.ScopeStats) int { return int(x.Loading) - int(y.Loading) }))
	require.Positive(t, seen[len(seen)/2].Loading)

	requireLoaded(t, b, dirB, msgs)
}

// requireLoaded checks that the node holds exactly msgs in chatScope,
// with no load running and no catch-up cursor left, and that its store,
// closed, verifies on reopen with the same root.
func requireLoaded(t *testing.T, b *node.Node, dir string, msgs []reconcile.Message) {
	t.Helper()
	st, _ := b.Store().Stats(chatScope)
	require.Zero(t, st.Loading)
	require.Equal(t, uint64(len(msgs)), st.Count)
	require.Equal(t, fingerprintOf(t, msgs), st.Root)
	require.Equal(t, sortedKeys(msgs), treeKeys(t, b.Store(), chatScope))
	curs, err := node.CatchUpCursors(b.Store(), t.Context(), chatScope)
	require.NoError(t, err)
	require.Empty(t, curs)
	require.NoError(t, b.Close())
	again := startNode(t, dir, node.WithStoreOptions(node.WithVerifyOnOpen(true)))
	require.Equal(t, fingerprintOf(t, msgs), roots(again)[chatScope])
	require.NoError(t, again.Close())
}

// TestCatchUpLoadTakesLiveCommits: messages put while a load runs, below
// where the stream is, inside what it has still to stream, beyond its
// end, and one the stream brings too, are stored once each; the scope
// ends with the peer's messages and those, and verifies on reopen.
func TestCatchUpLoadTakesLiveCommits(t *testing.T) {
	a := startNode(t, t.TempDir(), smallStreams)
	defer a.Close()
	dirB := t.TempDir()
	b := startNode(t, dirB, smallStreams)
	msgs := fill(t, a, chatScope, 20_000, 4)
	keys := sortedKeys(msgs)
	byKey := map[reconcile.Key]reconcile.Message{}
	for _, m := range msgs {
		byKey[m.Key()] = m
	}
	require.NoError(t, b.Connect(t.Context(), info(a)))

	at := func(k reconcile.Key, seed uint64) reconcile.Message {
		return msg(chatScope, int64(k.TS), seed) // the same timestamp, another hash
	}
	live := []reconcile.Message{
		at(keys[0], 1),              // below the stream
		at(keys[15_000], 2),         // ahead of it
		at(keys[len(keys)-1], 3),    // near the end
		byKey[keys[12_000]],         // one the stream brings too
		at(reconcile.Key{TS: 1}, 4), // older than everything
	}
	var once sync.Once
	ctx := protocol.WithProgress(t.Context(), func(protocol.Progress) {
		once.Do(func() {
			st, _ := b.Store().Stats(chatScope)
			require.Positive(t, st.Loading, "a load runs")
			res, err := b.Put(t.Context(), live...)
			require.NoError(t, err)
			require.Len(t, res.Added, len(live))
		})
	})
	rep, err := b.SyncNow(ctx, a.Host().ID(), chatScope)
	require.NoError(t, err)
	require.NoError(t, rep.Err())

	want := append(slices.Clone(msgs), live[0], live[1], live[2], live[4])
	requireLoaded(t, b, dirB, want)
}

// TestCatchUpLoadCutShortResumesFromItsRecords: a load whose datastore
// fails its commits after a message was put ahead of the stream leaves
// the records it stored and its bulk record, as a crash would. The next
// open rebuilds the scope and saves the cursor at the last key the
// stream stored, below the message put meanwhile (not at it, which
// would skip what lies between); the catch-up then resumes from there
// and ends with the peer's messages and that one.
func TestCatchUpLoadCutShortResumesFromItsRecords(t *testing.T) {
	a := startNode(t, t.TempDir(), smallStreams)
	defer a.Close()
	msgs := fill(t, a, chatScope, 20_000, 5)
	keys := sortedKeys(msgs)
	dirB := t.TempDir()
	lb := openLevel(t, dirB+"/datastore")
	fw := &failingDS{Batching: lb}
	b := startNode(t, dirB, smallStreams, node.WithDatastore(fw))
	require.NoError(t, b.Connect(t.Context(), info(a)))

	ahead := msg(chatScope, int64(keys[15_000].TS), 9)
	batches := 0
	ctx := protocol.WithProgress(t.Context(), func(protocol.Progress) {
		if batches++; batches == 3 {
			_, err := b.Put(t.Context(), ahead)
			require.NoError(t, err)
			fw.failFrom.Store(fw.commits.Load() + 1)
		}
	})
	_, err := b.SyncNow(ctx, a.Host().ID(), chatScope)
	require.Error(t, err)
	_ = b.Close() // its flushes fail
	require.NoError(t, lb.Close())

	again := startNode(t, dirB, smallStreams, node.WithStoreOptions(node.WithVerifyOnOpen(true)))
	defer again.Close()
	held := treeKeys(t, again.Store(), chatScope)
	require.Contains(t, held, ahead.Key())
	stored := slices.DeleteFunc(slices.Clone(held), func(k reconcile.Key) bool { return k == ahead.Key() })
	require.Greater(t, len(stored), 0)
	require.Less(t, len(stored), 15_000, "cut short before the stream reached the message put")
	require.Equal(t, keys[:len(stored)], stored, "the stream stored a prefix of the scope")
	curs, err := node.CatchUpCursors(again.Store(), t.Context(), chatScope)
	require.NoError(t, err)
	require.Len(t, curs, 1)
	require.Equal(t, stored[len(stored)-1], curs[0].After)

	require.NoError(t, again.Connect(t.Context(), info(a)))
	rep, err := again.SyncNow(t.Context(), a.Host().ID(), chatScope)
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	require.Equal(t, 20_000-len(stored), rep.Scopes[0].Streamed, "resumed where the stream stopped")
	want := append(slices.Clone(msgs), ahead)
	require.Equal(t, fingerprintOf(t, want), roots(again)[chatScope])
}

// TestCatchUpFromAnEmptyPeerWritesNothing: a catch-up of an empty scope
// from a peer that holds none of it starts no load: nothing is ever
// written under /storesync/resume (no bulk record, no cursor).
func TestCatchUpFromAnEmptyPeerWritesNothing(t *testing.T) {
	a := startNode(t, t.TempDir(), smallStreams)
	defer a.Close()
	d := &putLog{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
	b := startNode(t, t.TempDir(), smallStreams, node.WithDatastore(d))
	defer b.Close()
	require.NoError(t, b.Connect(t.Context(), info(a)))
	for range 3 {
		rep, err := b.SyncNow(t.Context(), a.Host().ID(), chatScope)
		require.NoError(t, err)
		require.NoError(t, rep.Err())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range d.keys {
		require.False(t, strings.HasPrefix(k, "/storesync/resume"), "wrote %s", k)
	}
}

// putLog records the keys of the datastore's single puts.
type putLog struct {
	ds.Batching
	mu   sync.Mutex
	keys []string
}

func (p *putLog) Put(ctx context.Context, k ds.Key, v []byte) error {
	p.mu.Lock()
	p.keys = append(p.keys, k.String())
	p.mu.Unlock()
	return p.Batching.Put(ctx, k, v)
}

// TestCatchUpLoadBesideAnImport: a catch-up from a peer, the import of a
// snapshot of other messages and Puts fill the same empty scope at once:
// in one round the import claims the scope first, in the other the
// catch-up's load does, and the other two start from its first progress.
// The others' messages are held and join the claiming load at its end:
// the scope ends with the union of all three, once each, and verifies on
// reopen.
func TestCatchUpLoadBesideAnImport(t *testing.T) {
	for _, loadFirst := range []bool{false, true} {
		a := startNode(t, t.TempDir(), smallStreams)
		c := startNode(t, t.TempDir(), smallStreams)
		dirB := t.TempDir()
		b := startNode(t, dirB, smallStreams)
		seed := uint64(10)
		if loadFirst {
			seed = 20
		}
		fromA := fill(t, a, chatScope, 20_000, seed)
		fromFile := fill(t, c, chatScope, 15_000, seed+1)
		// The file and the peer share 2,000 messages.
		_, err := c.Put(t.Context(), fromA[:2_000]...)
		require.NoError(t, err)
		path, _ := exportTo(t, c.Store(), chatScope, t.TempDir(), "c.snap")
		require.NoError(t, c.Close())
		require.NoError(t, b.Connect(t.Context(), info(a)))

		var live []reconcile.Message
		for i := range 50 {
			live = append(live, msg(chatScope, t0+int64(i)*7_919_000_000, seed*1000+uint64(i)))
		}
		var wg sync.WaitGroup
		var syncErr, importErr error
		catchUp := func(ctx context.Context) {
			defer wg.Done()
			_, syncErr = b.SyncNow(ctx, a.Host().ID(), chatScope)
		}
		restore := func(ctx context.Context) {
			defer wg.Done()
			_, importErr = b.Store().ImportFile(ctx, path)
		}
		first, second := restore, catchUp
		if loadFirst {
			first, second = catchUp, restore
		}
		// Once the first has stored a batch, it holds the scope; it then
		// starts the second and waits for it to report progress, so that
		// the second runs while the first holds the scope.
		var once, secondOnce sync.Once
		started, secondRuns := make(chan struct{}), make(chan struct{})
		wg.Add(1)
		go first(protocol.WithProgress(t.Context(), func(protocol.Progress) {
			if st, _ := b.Store().Stats(chatScope); st.Loading > 0 {
				once.Do(func() {
					wg.Add(1)
					go second(protocol.WithProgress(t.Context(), func(protocol.Progress) {
						secondOnce.Do(func() { close(secondRuns) })
					}))
					close(started)
					select {
					case <-secondRuns:
					case <-time.After(30 * time.Second):
					}
				})
			}
		}))
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatal("the first load stored nothing")
		}
		for _, m := range live {
			_, err := b.Put(t.Context(), m)
			require.NoError(t, err)
		}
		wg.Wait()
		require.NoError(t, syncErr)
		require.NoError(t, importErr)

		want := append(append(slices.Clone(fromA), fromFile...), live...)
		requireLoaded(t, b, dirB, want)
		require.NoError(t, a.Close())
	}
}
