package node_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// pageAll pages through q and returns the keys of every message seen, in
// order, checking each page's shape.
func pageAll(t *testing.T, s *node.Store, q node.Query) []reconcile.Key {
	t.Helper()
	out := []reconcile.Key{}
	limit := q.Limit
	if limit <= 0 {
		limit = node.DefaultQueryLimit
	}
	for range 100_000 {
		p, err := s.Query(t.Context(), q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Messages), limit)
		out = append(out, keysOfMessages(p.Messages)...)
		if !p.More {
			require.Zero(t, p.Next)
			return out
		}
		require.Len(t, p.Messages, limit, "a page with more after it is full")
		require.Equal(t, p.Messages[len(p.Messages)-1].Key(), p.Next)
		q.After = p.Next
	}
	t.Fatal("paging did not end")
	return nil
}

func TestQueryPagesEveryMessageOnce(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA, scopeB})
	r := rand.New(rand.NewPCG(3, 4))
	// A small time span makes many messages share a timestamp, so pages
	// also break between keys of one timestamp.
	msgs := randMsgs(r, scopeA, 1500, 200)
	_, err := s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	_, err = s.Put(t.Context(), randMsgs(r, scopeB, 100, 200)...)
	require.NoError(t, err)

	want := sortedKeys(msgs)
	for _, limit := range []int{0, 1, 7, 100, 1499, 1500, 5000} {
		got := pageAll(t, s, node.Query{Scope: scopeA, Limit: limit})
		require.Equal(t, want, got, "limit %d", limit)
	}
}

func TestQueryTimeWindow(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA})
	r := rand.New(rand.NewPCG(5, 6))
	msgs := randMsgs(r, scopeA, 800, 1000)
	_, err := s.Put(t.Context(), msgs...)
	require.NoError(t, err)

	for _, w := range []struct{ from, to int64 }{
		{0, 0}, {0, 500}, {500, 0}, {250, 260}, {300, 301}, {1001, 0}, {10, 10}, {20, 10},
	} {
		in := filterMsgs(msgs, func(m reconcile.Message) bool {
			return m.Timestamp >= w.from && (w.to == 0 || m.Timestamp < w.to)
		})
		got := pageAll(t, s, node.Query{Scope: scopeA, From: w.from, To: w.to, Limit: 33})
		require.Equal(t, sortedKeys(in), got, "window [%d, %d)", w.from, w.to)
	}
}

func TestQueryLimit(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA})
	r := rand.New(rand.NewPCG(7, 8))
	msgs := randMsgs(r, scopeA, node.MaxQueryLimit+50, 1e9)
	_, err := s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	want := sortedKeys(msgs)

	p, err := s.Query(t.Context(), node.Query{Scope: scopeA})
	require.NoError(t, err)
	require.Len(t, p.Messages, node.DefaultQueryLimit)
	require.True(t, p.More)

	p, err = s.Query(t.Context(), node.Query{Scope: scopeA, Limit: 10 * node.MaxQueryLimit})
	require.NoError(t, err)
	require.Len(t, p.Messages, node.MaxQueryLimit)
	require.Equal(t, want[:node.MaxQueryLimit], keysOfMessages(p.Messages))
	require.True(t, p.More)

	p, err = s.Query(t.Context(), node.Query{Scope: scopeA, After: p.Next, Limit: 50})
	require.NoError(t, err)
	require.Equal(t, want[node.MaxQueryLimit:], keysOfMessages(p.Messages))
	require.False(t, p.More)
}

func TestQueryErrors(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA})
	_, err := s.Query(t.Context(), node.Query{Scope: scopeX})
	require.ErrorIs(t, err, node.ErrUnknownScope)
	_, err = s.Query(t.Context(), node.Query{Scope: scopeA, From: -1})
	require.ErrorIs(t, err, node.ErrBadQuery)

	p, err := s.Query(t.Context(), node.Query{Scope: scopeA})
	require.NoError(t, err)
	require.Equal(t, node.Page{}, p)
}
