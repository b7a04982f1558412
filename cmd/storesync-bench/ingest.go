package main

import (
	"context"
	"fmt"
	"os"
	"time"

	ds "github.com/ipfs/go-datastore"
	leveldb "github.com/ipfs/go-ds-leveldb"

	"github.com/storesync/storesync/reconcile"
)

// Ingest shape: messages per datastore batch, and runs of each kind.
const (
	ingestBatch = 1000
	ingestRuns  = 3
)

// ingestData is what both kinds of ingest write, prepared beforehand so
// that the timings hold the store's work alone and the ratio shows what
// the tree adds to it.
type ingestData struct {
	keys   []reconcile.Key
	dsKeys []ds.Key
	values [][]byte
}

func prepareIngest(msgs []reconcile.Message) (*ingestData, error) {
	in := &ingestData{keys: keysOf(msgs), dsKeys: make([]ds.Key, len(msgs)), values: make([][]byte, len(msgs))}
	for i := range msgs {
		in.dsKeys[i] = ds.NewKey("/m/" + in.keys[i].Hash.String())
		v, err := msgs[i].ToPB().Marshal()
		if err != nil {
			return nil, fmt.Errorf("marshal message: %w", err)
		}
		in.values[i] = v
	}
	return in, nil
}

// runIngest measures messages per second into a fresh LevelDB, with raw
// puts and with the tree updated in the same batches. Runs alternate so
// that a slow spell of the machine hits both kinds; the medians are
// reported.
func runIngest(ctx context.Context, work string, msgs []reconcile.Message) error {
	in, err := prepareIngest(msgs)
	if err != nil {
		return err
	}
	rates := make(map[ingestKind][]float64)
	for run := range ingestRuns {
		for _, kind := range []ingestKind{ingestRaw, ingestTree, ingestMemos} {
			rate, err := ingestOnce(ctx, work, in, kind)
			if err != nil {
				return err
			}
			rates[kind] = append(rates[kind], rate)
			fmt.Fprintf(os.Stderr, "ingest run %d %s: %.0f msgs/s\n", run+1, kind, rate)
		}
	}
	t, m, r := median(rates[ingestTree]), median(rates[ingestMemos]), median(rates[ingestRaw])
	fmt.Printf("ingest n=%d tree_msgs_per_sec=%.0f raw_msgs_per_sec=%.0f ratio=%.2f memos_msgs_per_sec=%.0f memos_ratio=%.2f\n",
		len(msgs), t, r, t/r, m, m/r)
	return nil
}

// ingestKind is what an ingest run writes.
type ingestKind string

const (
	ingestRaw  ingestKind = "raw"  // the messages alone
	ingestTree ingestKind = "tree" // and their tree entries
	// ingestMemos: and the tree keeps the sketch memos of all it holds,
	// as on a node that serves sessions while it ingests: they are
	// filled, untimed, every memoWarmEvery messages, and the timed writes
	// keep them up to date.
	ingestMemos ingestKind = "tree+memos"
)

// memoWarmEvery is how often an ingestMemos run fills the memos.
const memoWarmEvery = 100_000

// ingestOnce writes every message into a fresh LevelDB in batches, in
// timestamp order, and returns messages per second. The database is
// closed and removed before it returns.
func ingestOnce(ctx context.Context, work string, in *ingestData, kind ingestKind) (rate float64, err error) {
	path, err := os.MkdirTemp(work, "ingest-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(path)
	db, err := leveldb.NewDatastore(path, nil)
	if err != nil {
		return 0, fmt.Errorf("open leveldb: %w", err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	var t *reconcile.Tree
	if kind != ingestRaw {
		if t, err = reconcile.Open(ctx, db, ds.NewKey("/t")); err != nil {
			return 0, err
		}
	}
	var elapsed time.Duration
	start := time.Now()
	for i := 0; i < len(in.keys); i += ingestBatch {
		if err := ingestBatchOf(ctx, db, t, in, i, min(i+ingestBatch, len(in.keys))); err != nil {
			return 0, err
		}
		if kind == ingestMemos && (i+ingestBatch)%memoWarmEvery == 0 {
			elapsed += time.Since(start)
			if err := t.WarmSketches(ctx); err != nil {
				return 0, err
			}
			start = time.Now()
		}
	}
	elapsed += time.Since(start)
	if t != nil && t.Count() != uint64(len(in.keys)) {
		return 0, fmt.Errorf("ingest: tree holds %d keys, want %d", t.Count(), len(in.keys))
	}
	return float64(len(in.keys)) / elapsed.Seconds(), nil
}

// ingestBatchOf writes messages [from, to) in one batch, with their tree
// entries when t is not nil, so that messages and tree commit together.
func ingestBatchOf(ctx context.Context, db *leveldb.Datastore, t *reconcile.Tree, in *ingestData, from, to int) error {
	b, err := db.Batch(ctx)
	if err != nil {
		return err
	}
	for j := from; j < to; j++ {
		if err := b.Put(ctx, in.dsKeys[j], in.values[j]); err != nil {
			return err
		}
	}
	if t == nil {
		return b.Commit(ctx)
	}
	x := t.Begin()
	for j := from; j < to; j++ {
		x.Insert(in.keys[j])
	}
	if err = x.Write(ctx, b); err == nil {
		err = b.Commit(ctx)
	}
	if err != nil {
		x.Discard()
		return err
	}
	x.Commit()
	return nil
}
