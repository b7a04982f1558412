package reconcile

import (
	"context"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"
)

// writeKeys inserts keys in one Txn and commits it.
func writeKeys(t *testing.T, tr *Tree, keys []Key) {
	t.Helper()
	ctx := context.Background()
	d := tr.d.(ds.Batching)
	b, err := d.Batch(ctx)
	require.NoError(t, err)
	x := tr.Begin()
	for _, k := range keys {
		x.Insert(k)
	}
	require.NoError(t, x.Write(ctx, b))
	require.NoError(t, b.Commit(ctx))
	x.Commit()
}

// TestBulkWriteCachesNoLeaves: a Txn that writes many leaves caches only
// its internal nodes, and drops the stale copy of a rewritten leaf, so
// reads see exactly the keys written; a small Txn caches its leaves.
func TestBulkWriteCachesNoLeaves(t *testing.T) {
	ctx := context.Background()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	tr, err := Open(ctx, d, ds.NewKey("/t"))
	require.NoError(t, err)
	keys := make([]Key, 20_000)
	for i := range keys {
		keys[i] = Key{TS: uint64(i + 1), Hash: MessageHash("/p", "/c", []byte{byte(i), byte(i >> 8)}, nil, int64(i+1))}
	}
	cachedLeaves := func() (n int) {
		tr.store.mu.Lock()
		defer tr.store.mu.Unlock()
		for a := range tr.store.items {
			if a.height == 0 {
				n++
			}
		}
		return n
	}
	writeKeys(t, tr, keys[:100]) // a few leaves: cached
	require.Positive(t, cachedLeaves())
	for _, k := range keys[:100] {
		has, err := tr.Has(ctx, k) // the open leaf is cached now
		require.NoError(t, err)
		require.True(t, has)
	}
	before := cachedLeaves()
	writeKeys(t, tr, keys[100:]) // hundreds of leaves, the open one rewritten
	require.LessOrEqual(t, cachedLeaves(), before, "no leaf of the bulk write is cached")
	require.Equal(t, uint64(len(keys)), tr.Count())
	n := 0
	require.NoError(t, tr.Iterate(ctx, Key{}, End, func(k Key) error {
		require.Equal(t, keys[n], k)
		n++
		return nil
	}))
	require.Equal(t, len(keys), n)
}

// countingGets is a datastore that counts its reads of records.
type countingGets struct {
	ds.Batching
	gets int
}

func (c *countingGets) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	c.gets++
	return c.Batching.Get(ctx, k)
}

// TestBulkWriteCachesItsEdge: after a bulk write, the next write in key
// order finds the nodes it rewrites in the cache (the internal nodes and
// the last leaf), without reading the datastore. A read of a record just
// written is one LevelDB serves from its write buffer, and such reads
// keep LevelDB from reusing its buffers.
func TestBulkWriteCachesItsEdge(t *testing.T) {
	ctx := context.Background()
	d := &countingGets{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
	tr, err := Open(ctx, d, ds.NewKey("/t"))
	require.NoError(t, err)
	var keys []Key
	for i := range 40_000 {
		keys = append(keys, Key{TS: uint64(i + 1), Hash: MessageHash("/p", "/c", []byte{byte(i), byte(i >> 8)}, nil, int64(i+1))})
	}
	for from := 0; from < len(keys); from += 8192 {
		writeKeys(t, tr, keys[from:min(from+8192, len(keys))])
	}
	d.gets = 0
	for i := range 5 {
		ts := uint64(len(keys) + i + 1)
		writeKeys(t, tr, []Key{{TS: ts, Hash: MessageHash("/p", "/c", nil, nil, int64(ts))}})
	}
	require.Zero(t, d.gets, "the writes at the edge read no node from the datastore")
	require.Equal(t, uint64(len(keys)+5), tr.Count())
}
