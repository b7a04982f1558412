package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// buildBatch is how many keys go into one tree update while building.
const buildBatch = 10_000

// treePair is the two stores of the reconciliation cases, both in one
// LevelDB on disk, opened as a node opens its own (node.OpenLevelDB:
// bloom filters, block cache): A holds every message, B is the node
// catching up. B
// also holds every message between cases; a case takes its missing keys
// out and puts them back, which costs far less than building a tree of a
// million keys per case.
type treePair struct {
	db   *countingDB
	a, b *reconcile.Tree
}

// countingDB counts the records read from the stores, so that a case
// shows how many nodes a session reads.
type countingDB struct {
	ds.Batching
	reads atomic.Int64
}

// Get counts a read.
func (c *countingDB) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	c.reads.Add(1)
	return c.Batching.Get(ctx, k)
}

// openTrees creates the LevelDB in folder and builds both trees over keys,
// opened with opts.
func openTrees(ctx context.Context, folder string, keys []reconcile.Key, opts ...reconcile.Option) (*treePair, error) {
	path := filepath.Join(folder, "trees")
	level, err := node.OpenLevelDB(path)
	if err != nil {
		return nil, fmt.Errorf("open leveldb: %w", err)
	}
	db := &countingDB{Batching: level}
	p := &treePair{db: db}
	if p.a, err = reconcile.Open(ctx, db, ds.NewKey("/a"), opts...); err == nil {
		p.b, err = reconcile.Open(ctx, db, ds.NewKey("/b"), opts...)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	start := time.Now()
	for _, t := range []*reconcile.Tree{p.a, p.b} {
		if err := build(ctx, t, keys); err != nil {
			db.Close()
			return nil, err
		}
	}
	// Progress goes to stderr so that stdout holds only result lines.
	fmt.Fprintf(os.Stderr, "built two trees of %d keys in %.1fs (height %d)\n",
		len(keys), time.Since(start).Seconds(), p.a.Height())
	if p.a.Root() != p.b.Root() {
		db.Close()
		return nil, fmt.Errorf("trees built from the same keys have different roots")
	}
	return p, nil
}

// build inserts keys into t in batches, as a store fills up over time.
func build(ctx context.Context, t *reconcile.Tree, keys []reconcile.Key) error {
	for i := 0; i < len(keys); i += buildBatch {
		batch := keys[i:min(i+buildBatch, len(keys))]
		added, _, err := t.Apply(ctx, batch, nil)
		if err != nil {
			return fmt.Errorf("build tree: %w", err)
		}
		if added != len(batch) {
			return fmt.Errorf("build tree: %d of %d keys added", added, len(batch))
		}
	}
	if t.Count() != uint64(len(keys)) {
		return fmt.Errorf("build tree: %d keys, want %d", t.Count(), len(keys))
	}
	return nil
}

// remove takes a case's keys out of B and A.
func (p *treePair) remove(ctx context.Context, fromB, fromA []reconcile.Key) error {
	for _, c := range []struct {
		t    *reconcile.Tree
		keys []reconcile.Key
	}{{p.b, fromB}, {p.a, fromA}} {
		_, removed, err := c.t.Apply(ctx, nil, c.keys)
		if err != nil {
			return fmt.Errorf("remove missing keys: %w", err)
		}
		if removed != len(c.keys) {
			return fmt.Errorf("remove missing keys: %d of %d removed", removed, len(c.keys))
		}
	}
	return nil
}

// restore puts a case's keys back after it and checks that B is equal to
// A again, so that the next case starts from the full set.
func (p *treePair) restore(ctx context.Context, fromB, fromA []reconcile.Key) error {
	for _, c := range []struct {
		t    *reconcile.Tree
		keys []reconcile.Key
	}{{p.b, fromB}, {p.a, fromA}} {
		added, _, err := c.t.Apply(ctx, c.keys, nil)
		if err != nil {
			return fmt.Errorf("restore missing keys: %w", err)
		}
		if added != len(c.keys) {
			return fmt.Errorf("restore missing keys: %d of %d added", added, len(c.keys))
		}
	}
	if p.a.Root() != p.b.Root() {
		return fmt.Errorf("after restoring, B's root differs from A's")
	}
	return nil
}

// close closes the LevelDB.
func (p *treePair) close() error { return p.db.Close() }
