package node_test

import (
	"math/rand/v2"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// journalPrefix is where the store keeps its journal records.
const journalPrefix = "/storesync/pending"

// copyDatastore returns a new datastore holding every record of d: what a
// machine that crashed would find on its disk.
func copyDatastore(t *testing.T, d ds.Datastore) ds.Batching {
	t.Helper()
	res, err := d.Query(t.Context(), dsq.Query{})
	require.NoError(t, err)
	recs, err := res.Rest()
	require.NoError(t, err)
	out := dssync.MutexWrap(ds.NewMapDatastore())
	for _, r := range recs {
		require.NoError(t, out.Put(t.Context(), ds.RawKey(r.Key), r.Value))
	}
	return out
}

// countPrefix counts the records of d under prefix.
func countPrefix(t *testing.T, d ds.Datastore, prefix string) int {
	t.Helper()
	res, err := d.Query(t.Context(), dsq.Query{Prefix: prefix, KeysOnly: true})
	require.NoError(t, err)
	recs, err := res.Rest()
	require.NoError(t, err)
	return len(recs)
}

// neverFlush keeps every committed key in the journal until Close.
var neverFlush = node.WithFlush(1<<30, time.Hour)

func TestJournalReplayAfterCrash(t *testing.T) {
	scopes := []reconcile.Scope{scopeA, scopeB}
	s, d := newMemStore(t, scopes, neverFlush)
	r := rand.New(rand.NewPCG(3, 4))
	var msgs []reconcile.Message
	for _, sc := range scopes {
		msgs = append(msgs, randMsgs(r, sc, 3000, 1e12)...)
	}
	r.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	// Some messages reach the trees, then retention runs (which flushes),
	// then more commits stay in the journal only.
	_, err := s.Put(t.Context(), msgs[:2000]...)
	require.NoError(t, err)
	_, err = s.DeleteBefore(t.Context(), scopeA, 1e11)
	require.NoError(t, err)
	for i := 2000; i < len(msgs); i += 7 {
		_, err := s.Put(t.Context(), msgs[i:min(i+7, len(msgs))]...)
		require.NoError(t, err)
	}
	require.Positive(t, countPrefix(t, d, journalPrefix), "commits wait in the journal")
	want := map[reconcile.Scope]node.ScopeStats{}
	for _, sc := range scopes {
		want[sc], _ = s.Stats(sc)
	}

	// The crash: the datastore as it is, without Close.
	crashed := copyDatastore(t, d)
	s2 := openWith(t, crashed, nil, node.WithVerifyOnOpen(true))
	require.Zero(t, countPrefix(t, crashed, journalPrefix), "open replays and clears the journal")
	for _, sc := range scopes {
		got, ok := s2.Stats(sc)
		require.True(t, ok)
		require.Equal(t, want[sc].Count, got.Count)
		require.Equal(t, want[sc].Root, got.Root)
		require.Equal(t, want[sc].Newest, got.Newest)
		tr, _ := s2.Tree(sc)
		require.Equal(t, want[sc].Root, tr.Root().Fingerprint())
		// Exactly the stored messages: none lost, none duplicated.
		var kept []reconcile.Message
		for i, m := range msgs {
			if m.PubsubTopic == sc.PubsubTopic && m.ContentTopic == sc.ContentTopic &&
				(sc != scopeA || i >= 2000 || m.Timestamp >= 1e11) {
				kept = append(kept, m)
			}
		}
		require.Equal(t, sortedKeys(kept), treeKeys(t, s2, sc))
	}
	// The replayed store keeps working and agrees with the one that
	// never crashed.
	for _, sc := range scopes {
		require.Equal(t, treeKeys(t, s, sc), treeKeys(t, s2, sc))
	}
	res, err := s2.Put(t.Context(), msgs[:10]...)
	require.NoError(t, err)
	require.Equal(t, 10, res.Duplicates+len(res.Added))
}

func TestJournalFlushesByCountAndAge(t *testing.T) {
	s, d := newMemStore(t, []reconcile.Scope{scopeA}, node.WithFlush(50, time.Hour))
	for i := range 600 {
		_, err := s.Put(t.Context(), msg(scopeA, int64(i+1), uint64(i)))
		require.NoError(t, err)
		// A flush is asked for at 50 waiting keys and runs in the
		// background; a commit that finds four flushes' worth waiting
		// flushes itself.
		require.LessOrEqual(t, countPrefix(t, d, journalPrefix), 200, "after %d puts", i+1)
	}
	require.Eventually(t, func() bool { return countPrefix(t, d, journalPrefix) < 50 },
		10*time.Second, 5*time.Millisecond, "the background flush takes every full batch")

	s2, d2 := newMemStore(t, []reconcile.Scope{scopeA}, node.WithFlush(1<<20, 20*time.Millisecond))
	_, err := s2.Put(t.Context(), msg(scopeA, 1, 1))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return countPrefix(t, d2, journalPrefix) == 0 },
		10*time.Second, 5*time.Millisecond, "the background flush empties the journal")
}

func TestJournalCloseLeavesNone(t *testing.T) {
	d := dssync.MutexWrap(ds.NewMapDatastore())
	s, err := node.OpenStore(t.Context(), d, neverFlush)
	require.NoError(t, err)
	require.NoError(t, s.AddScope(t.Context(), scopeA))
	msgs := randMsgs(rand.New(rand.NewPCG(5, 6)), scopeA, 500, 1e9)
	_, err = s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	require.Equal(t, 1, countPrefix(t, d, journalPrefix))
	require.NoError(t, s.Close())
	require.Zero(t, countPrefix(t, d, journalPrefix))
	s2 := openWith(t, d, nil, node.WithVerifyOnOpen(true))
	require.Equal(t, sortedKeys(msgs), treeKeys(t, s2, scopeA))
}

func TestJournalFailedFlushLosesNothing(t *testing.T) {
	d := &errDatastore{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
	s := openWith(t, d, []reconcile.Scope{scopeA}, neverFlush)
	msgs := randMsgs(rand.New(rand.NewPCG(7, 8)), scopeA, 300, 1e9)
	_, err := s.Put(t.Context(), msgs...)
	require.NoError(t, err)

	d.fail = true
	_, ok := s.Tree(scopeA) // its flush fails
	require.True(t, ok)
	_, err = s.DeleteBefore(t.Context(), scopeA, 1e9)
	require.ErrorIs(t, err, errInjected)
	st, _ := s.Stats(scopeA)
	require.Equal(t, uint64(len(msgs)), st.Count)
	got, err := s.Get(t.Context(), scopeA, keysOf(msgs[:3]))
	require.NoError(t, err)
	require.Equal(t, msgs[0], *got[0])

	d.fail = false
	require.Equal(t, sortedKeys(msgs), treeKeys(t, s, scopeA))
	tr, _ := s.Tree(scopeA)
	require.Equal(t, st.Root, tr.Root().Fingerprint())
}

func TestJournalDamageIsCorrupt(t *testing.T) {
	for name, value := range map[string][]byte{
		"bad format":    {9},
		"truncated":     {1, 0, 1, 2},
		"unknown scope": unknownScopeJournal(),
	} {
		t.Run(name, func(t *testing.T) {
			d := dssync.MutexWrap(ds.NewMapDatastore())
			s, err := node.OpenStore(t.Context(), d)
			require.NoError(t, err)
			require.NoError(t, s.AddScope(t.Context(), scopeA))
			require.NoError(t, s.Close())
			require.NoError(t, d.Put(t.Context(), ds.NewKey(journalPrefix+"/0000000000000000"), value))
			_, err = node.OpenStore(t.Context(), d)
			require.ErrorIs(t, err, node.ErrCorrupt)
			if name == "unknown scope" {
				require.ErrorContains(t, err, "not kept")
			}
		})
	}
	d := dssync.MutexWrap(ds.NewMapDatastore())
	require.NoError(t, d.Put(t.Context(), ds.NewKey(journalPrefix+"/zz"), []byte{1}))
	_, err := node.OpenStore(t.Context(), d)
	require.ErrorIs(t, err, node.ErrCorrupt, "a record whose key is no sequence number")
}

func TestWithFlushRejectsNonsense(t *testing.T) {
	d := dssync.MutexWrap(ds.NewMapDatastore())
	for _, o := range []node.StoreOption{node.WithFlush(0, time.Second), node.WithFlush(10, 0)} {
		_, err := node.OpenStore(t.Context(), d, o)
		require.Error(t, err)
	}
}

// unknownScopeJournal returns a well-formed journal record naming a scope
// the store does not keep.
func unknownScopeJournal() []byte {
	m := msg(scopeX, 1, 1)
	k := m.Key()
	id := scopeX.ID()
	b := append([]byte{2}, id[:]...) // format 2
	b = append(b, 0)                 // one key
	return append(b, k.Bytes()...)
}
