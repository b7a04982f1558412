package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	ds "github.com/ipfs/go-datastore"
	leveldb "github.com/ipfs/go-ds-leveldb"

	"github.com/storesync/storesync/reconcile"
)

// ingestBatch is how many messages go into one datastore batch.
const ingestBatch = 1000

// runIngest measures messages per second into LevelDB alone (raw puts)
// and into LevelDB with the tree updated in the same batches, alternately
// three times each on fresh databases, and prints the medians.
func runIngest(ctx context.Context, dir string, msgs []reconcile.Message) error {
	keys := keysOf(msgs)
	dsKeys := make([]ds.Key, len(msgs))
	values := make([][]byte, len(msgs))
	for i := range msgs {
		dsKeys[i] = ds.NewKey("/m/" + keys[i].Hash.String())
		b, err := msgs[i].ToPB().Marshal()
		if err != nil {
			return err
		}
		values[i] = b
	}
	var raw, tree []float64
	for run := range 3 {
		for _, withTree := range []bool{false, true} {
			path := filepath.Join(dir, fmt.Sprintf("ingest-%d-%t", run, withTree))
			rate, err := ingestOnce(ctx, path, keys, dsKeys, values, withTree)
			if err != nil {
				return err
			}
			if withTree {
				tree = append(tree, rate)
			} else {
				raw = append(raw, rate)
			}
		}
	}
	slices.Sort(raw)
	slices.Sort(tree)
	fmt.Printf("ingest n=%d tree_msgs_per_sec=%.0f raw_msgs_per_sec=%.0f ratio=%.2f\n",
		len(msgs), tree[1], raw[1], tree[1]/raw[1])
	return nil
}

func ingestOnce(ctx context.Context, path string, keys []reconcile.Key, dsKeys []ds.Key, values [][]byte, withTree bool) (float64, error) {
	db, err := leveldb.NewDatastore(path, nil)
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(path)
	defer db.Close()
	var t *reconcile.Tree
	if withTree {
		if t, err = reconcile.Open(ctx, db, ds.NewKey("/t")); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	for i := 0; i < len(keys); i += ingestBatch {
		end := min(i+ingestBatch, len(keys))
		b, err := db.Batch(ctx)
		if err != nil {
			return 0, err
		}
		for j := i; j < end; j++ {
			if err := b.Put(ctx, dsKeys[j], values[j]); err != nil {
				return 0, err
			}
		}
		if t == nil {
			if err := b.Commit(ctx); err != nil {
				return 0, err
			}
			continue
		}
		x := t.Begin()
		for j := i; j < end; j++ {
			x.Insert(keys[j])
		}
		if err = x.Write(ctx, b); err == nil {
			err = b.Commit(ctx)
		}
		if err != nil {
			x.Discard()
			return 0, err
		}
		x.Commit()
	}
	return float64(len(keys)) / time.Since(start).Seconds(), nil
}
