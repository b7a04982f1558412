package node_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

func TestPutGetHas(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA, scopeB})
	a := []reconcile.Message{msg(scopeA, 10, 1), msg(scopeA, 20, 2)}
	b := []reconcile.Message{msg(scopeB, 15, 3)}
	a[1].Meta = []byte("meta")

	res, err := s.Put(t.Context(), a[0], b[0], a[1])
	require.NoError(t, err)
	require.Equal(t, []reconcile.Message{a[0], b[0], a[1]}, res.Added)
	require.Zero(t, res.Duplicates)
	require.Empty(t, res.Rejected)

	other := msg(scopeA, 30, 4)
	absent := other.Key()
	got, err := s.Get(t.Context(), scopeA, []reconcile.Key{a[1].Key(), absent, a[0].Key()})
	require.NoError(t, err)
	require.Equal(t, []*reconcile.Message{&a[1], nil, &a[0]}, got)

	ok, err := s.Has(t.Context(), scopeB, b[0].Key())
	require.NoError(t, err)
	require.True(t, ok)
	// A message is found in its own scope only.
	ok, err = s.Has(t.Context(), scopeA, b[0].Key())
	require.NoError(t, err)
	require.False(t, ok)

	_, err = s.Get(t.Context(), scopeX, []reconcile.Key{absent})
	require.ErrorIs(t, err, node.ErrUnknownScope)
	_, err = s.Has(t.Context(), scopeX, absent)
	require.ErrorIs(t, err, node.ErrUnknownScope)
}

func TestPutSkipsDuplicates(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA})
	m1, m2, m3 := msg(scopeA, 10, 1), msg(scopeA, 11, 2), msg(scopeA, 12, 3)
	_, err := s.Put(t.Context(), m1, m2)
	require.NoError(t, err)

	// m1 is stored already; m3 comes twice in the same call.
	res, err := s.Put(t.Context(), m1, m3, m3)
	require.NoError(t, err)
	require.Equal(t, []reconcile.Message{m3}, res.Added)
	require.Equal(t, 2, res.Duplicates)

	res, err = s.Put(t.Context(), m1, m2, m3)
	require.NoError(t, err)
	require.Empty(t, res.Added)
	require.Equal(t, 3, res.Duplicates)

	st, ok := s.Stats(scopeA)
	require.True(t, ok)
	require.Equal(t, uint64(3), st.Count)
}

func TestPutRejectsPerMessage(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA})
	good1, good2 := msg(scopeA, 10, 1), msg(scopeA, 11, 2)
	unknown := msg(scopeX, 12, 3)
	badTime := msg(scopeA, 0, 4)
	noTopic := msg(scopeA, 13, 5)
	noTopic.ContentTopic = ""

	res, err := s.Put(t.Context(), good1, unknown, badTime, good2, noTopic)
	require.NoError(t, err)
	require.Equal(t, []reconcile.Message{good1, good2}, res.Added)
	require.Len(t, res.Rejected, 3)
	require.Equal(t, 1, res.Rejected[0].Index)
	require.ErrorIs(t, res.Rejected[0].Err, node.ErrUnknownScope)
	require.Equal(t, 2, res.Rejected[1].Index)
	require.ErrorIs(t, res.Rejected[1].Err, node.ErrInvalidMessage)
	require.ErrorIs(t, res.Rejected[1].Err, reconcile.ErrBadTimestamp)
	require.Equal(t, 4, res.Rejected[2].Index)
	require.ErrorIs(t, res.Rejected[2].Err, node.ErrInvalidMessage)

	got, err := s.Get(t.Context(), scopeA, keysOf([]reconcile.Message{good1, good2}))
	require.NoError(t, err)
	require.NotContains(t, got, (*reconcile.Message)(nil))
}

func TestStatsMatchModel(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, _ := newMemStore(t, []reconcile.Scope{scopeA, scopeB}, node.WithNow(func() time.Time { return now }))

	st, ok := s.Stats(scopeA)
	require.True(t, ok)
	require.Equal(t, node.ScopeStats{Scope: scopeA, Root: fingerprintOf(t, nil)}, st)

	r := rand.New(rand.NewPCG(1, 2))
	msgs := randMsgs(r, scopeA, 3000, 1e12)
	// Put in chunks, each repeating part of the previous one.
	for i := 0; i < len(msgs); i += 400 {
		_, err := s.Put(t.Context(), msgs[max(0, i-100):min(len(msgs), i+400)]...)
		require.NoError(t, err)
	}
	newest := int64(0)
	for _, m := range msgs {
		newest = max(newest, m.Timestamp)
	}

	st, ok = s.Stats(scopeA)
	require.True(t, ok)
	require.Equal(t, uint64(len(sortedKeys(msgs))), st.Count)
	require.Equal(t, fingerprintOf(t, msgs), st.Root)
	require.Equal(t, newest, st.Newest)
	require.True(t, now.Equal(st.LastAdded))
	tr, ok := s.Tree(scopeA)
	require.True(t, ok)
	require.Equal(t, st.Root, tr.Root().Fingerprint())
	require.Equal(t, sortedKeys(msgs), treeKeys(t, s, scopeA))

	// The other scope is untouched.
	st, ok = s.Stats(scopeB)
	require.True(t, ok)
	require.Zero(t, st.Count)
	require.True(t, st.LastAdded.IsZero())
	_, ok = s.Stats(scopeX)
	require.False(t, ok)
}

func TestScopes(t *testing.T) {
	s, d := newMemStore(t, nil)
	require.Empty(t, s.Scopes())
	for _, sc := range []reconcile.Scope{scopeB, scopeA, scopeB} {
		require.NoError(t, s.AddScope(t.Context(), sc))
	}
	require.Equal(t, []reconcile.Scope{scopeA, scopeB}, s.Scopes())

	got, ok := s.ScopeByID(scopeB.ID())
	require.True(t, ok)
	require.Equal(t, scopeB, got)
	_, ok = s.ScopeByID(scopeX.ID())
	require.False(t, ok)

	set, ok := s.Set(scopeA)
	require.True(t, ok)
	tr, _ := s.Tree(scopeA)
	require.Same(t, tr, set)
	_, ok = s.Set(scopeX)
	require.False(t, ok)

	require.Error(t, s.AddScope(t.Context(), reconcile.Scope{PubsubTopic: "/p"}))

	// Scopes persist: a second store over the same datastore keeps them.
	require.NoError(t, s.Close())
	again := openWith(t, d, nil)
	require.Equal(t, []reconcile.Scope{scopeA, scopeB}, again.Scopes())
}

func TestClosedStore(t *testing.T) {
	d := dssync.MutexWrap(ds.NewMapDatastore())
	s, err := node.OpenStore(t.Context(), d)
	require.NoError(t, err)
	require.NoError(t, s.AddScope(t.Context(), scopeA))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())

	_, err = s.Put(t.Context(), msg(scopeA, 1, 1))
	require.ErrorIs(t, err, node.ErrClosed)
	_, err = s.Query(t.Context(), node.Query{Scope: scopeA})
	require.ErrorIs(t, err, node.ErrClosed)
	require.ErrorIs(t, s.AddScope(t.Context(), scopeB), node.ErrClosed)
	_, ok := <-s.Subscribe(t.Context(), 1).C()
	require.False(t, ok)
	// The datastore is the caller's and still open.
	_, err = d.Has(t.Context(), ds.NewKey("/x"))
	require.NoError(t, err)
}

func TestOpenStoreOptions(t *testing.T) {
	d := dssync.MutexWrap(ds.NewMapDatastore())
	_, err := node.OpenStore(t.Context(), d, node.WithTreeCache(10))
	require.Error(t, err, "below the tree's minimum cache")
	_, err = node.OpenStore(t.Context(), d, node.WithNow(nil))
	require.Error(t, err)
	s, err := node.OpenStore(t.Context(), d, node.WithTreeCache(4096), node.WithVerifyOnOpen(true))
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// errDatastore fails every batch commit once armed.
type errDatastore struct {
	ds.Batching
	fail bool
}

type errBatch struct {
	ds.Batch
	d *errDatastore
}

var errInjected = errors.New("injected failure")

func (d *errDatastore) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := d.Batching.Batch(ctx)
	return errBatch{Batch: b, d: d}, err
}

func (b errBatch) Commit(ctx context.Context) error {
	if b.d.fail {
		return errInjected
	}
	return b.Batch.Commit(ctx)
}

func TestPutFailedCommitLeavesNoTrace(t *testing.T) {
	d := &errDatastore{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
	s := openWith(t, d, []reconcile.Scope{scopeA})
	m1, m2 := msg(scopeA, 10, 1), msg(scopeA, 11, 2)
	_, err := s.Put(t.Context(), m1)
	require.NoError(t, err)
	before, _ := s.Stats(scopeA)

	d.fail = true
	res, err := s.Put(t.Context(), m2)
	require.ErrorIs(t, err, errInjected)
	require.Empty(t, res.Added)
	after, _ := s.Stats(scopeA)
	require.Equal(t, before, after)

	// The failed Put released the scope: the next one goes through.
	d.fail = false
	require.Equal(t, sortedKeys([]reconcile.Message{m1}), treeKeys(t, s, scopeA))
	res, err = s.Put(t.Context(), m2)
	require.NoError(t, err)
	require.Len(t, res.Added, 1)
}
