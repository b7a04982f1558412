package main

import (
	"context"
	"fmt"
	"os"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// liveScopes is how many scopes the multi-scope Put spreads its batch
// over: one message each.
const liveScopes = ingestBatch

// ingestRun is one run of every store-ingest measurement.
type ingestRun struct {
	raw, store             loadTiming // n messages, batches of ingestBatch
	indexed                loadTiming // store, with the hash index
	rawSingle, storeSingle loadTiming // then o.single more, one per batch
	oneScope, multiScope   loadTiming // o.calls batches into fresh stores
	oneSingle, multiSingle loadTiming // o.single one-message calls, fresh stores
	rawOne, rawMulti       loadTiming // the same records, raw, fresh LevelDBs
}

// runStoreIngest measures node.Store.Put against raw batched LevelDB puts
// of the same records (see rawWriter), in bulk and in the shapes of live
// traffic, and prints the table and the figure lines. The kinds alternate
// within every run, so that a slow spell of the machine hits all of them.
func runStoreIngest(ctx context.Context, work string, o options) error {
	var runs []ingestRun
	for r := range o.runs {
		run, err := storeIngestOnce(ctx, work, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "ingest run %d: raw %.0f/s, store %.0f/s, single raw %.0f/s, single store %.0f/s, one scope %.0f/s, %d scopes %.0f/s\n",
			r+1, run.raw.rate(), run.store.rate(), run.rawSingle.rate(), run.storeSingle.rate(),
			run.oneScope.rate(), liveScopes, run.multiScope.rate())
		runs = append(runs, run)
	}
	printIngest(os.Stdout, o, runs)
	return nil
}

// storeIngestOnce runs each kind once, in a fresh LevelDB of its own.
func storeIngestOnce(ctx context.Context, work string, o options) (ingestRun, error) {
	var run ingestRun
	var err error
	if run.raw, run.rawSingle, err = rawIngest(ctx, work, o); err != nil {
		return run, fmt.Errorf("raw ingest: %w", err)
	}
	if run.store, run.storeSingle, err = storeIngest(ctx, work, o); err != nil {
		return run, fmt.Errorf("store ingest: %w", err)
	}
	// The bulk of storeIngest, into a store that keeps the hash index, as
	// a Store v3 server's does.
	if run.indexed, err = loadStore(ctx, work, newGenerator(o.seed, livePayloadSize, 1), o.n, ingestBatch, node.WithHashIndex(true)); err != nil {
		return run, fmt.Errorf("store ingest with the hash index: %w", err)
	}
	calls := o.calls * ingestBatch
	if run.rawOne, err = loadRaw(ctx, work, newGenerator(o.seed, livePayloadSize, 1), calls, ingestBatch); err != nil {
		return run, fmt.Errorf("one-scope raw: %w", err)
	}
	if run.oneScope, err = loadStore(ctx, work, newGenerator(o.seed, livePayloadSize, 1), calls, ingestBatch); err != nil {
		return run, fmt.Errorf("one-scope Put: %w", err)
	}
	// The same payloads and timestamps, one message per scope per call.
	if run.rawMulti, err = loadRaw(ctx, work, newGenerator(o.seed, livePayloadSize, liveScopes), calls, ingestBatch); err != nil {
		return run, fmt.Errorf("%d-scope raw: %w", liveScopes, err)
	}
	if run.multiScope, err = loadStore(ctx, work, newGenerator(o.seed, livePayloadSize, liveScopes), calls, ingestBatch); err != nil {
		return run, fmt.Errorf("%d-scope Put: %w", liveScopes, err)
	}
	// Live traffic: one message per call, into one scope or in turn over
	// liveScopes.
	if run.oneSingle, err = loadStore(ctx, work, newGenerator(o.seed, livePayloadSize, 1), o.single, 1); err != nil {
		return run, fmt.Errorf("one-scope single Put: %w", err)
	}
	if run.multiSingle, err = loadStore(ctx, work, newGenerator(o.seed, livePayloadSize, liveScopes), o.single, 1); err != nil {
		return run, fmt.Errorf("%d-scope single Put: %w", liveScopes, err)
	}
	return run, nil
}

// loadRaw writes n messages of g, batch per rawWriter batch, into a
// fresh LevelDB.
func loadRaw(ctx context.Context, work string, g *generator, n, batch int) (t loadTiming, err error) {
	d, done, err := freshLevelDB(work, "raw-scopes-")
	if err != nil {
		return t, err
	}
	defer done(&err)
	return timedLoad(ctx, g, n, batch, newRawWriter(d).write)
}

// rawIngest writes o.n messages with rawWriter in batches, then o.single
// more one per batch, into a fresh LevelDB.
func rawIngest(ctx context.Context, work string, o options) (bulk, single loadTiming, err error) {
	d, done, err := freshLevelDB(work, "raw-")
	if err != nil {
		return bulk, single, err
	}
	defer done(&err)
	w := newRawWriter(d)
	g := newGenerator(o.seed, livePayloadSize, 1)
	if bulk, err = timedLoad(ctx, g, o.n, ingestBatch, w.write); err != nil {
		return bulk, single, err
	}
	single, err = timedLoad(ctx, g, o.single, 1, w.write)
	return bulk, single, err
}

// storeIngest is rawIngest through node.Store.Put: the same messages in
// the same batches, then the same single messages one Put call each.
func storeIngest(ctx context.Context, work string, o options) (bulk, single loadTiming, err error) {
	d, done, err := freshLevelDB(work, "store-")
	if err != nil {
		return bulk, single, err
	}
	defer done(&err)
	g := newGenerator(o.seed, livePayloadSize, 1)
	st, err := openBenchStore(ctx, d, g.scopes())
	if err != nil {
		return bulk, single, err
	}
	defer st.Close()
	if bulk, err = timedLoad(ctx, g, o.n, ingestBatch, storePut(st)); err != nil {
		return bulk, single, err
	}
	single, err = timedLoad(ctx, g, o.single, 1, storePut(st))
	return bulk, single, err
}

// loadStore Puts n messages of g, batch per call, into a fresh store that
// keeps every scope of g, opened with opts.
func loadStore(ctx context.Context, work string, g *generator, n, batch int, opts ...node.StoreOption) (t loadTiming, err error) {
	d, done, err := freshLevelDB(work, "scopes-")
	if err != nil {
		return t, err
	}
	defer done(&err)
	st, err := openBenchStore(ctx, d, g.scopes(), opts...)
	if err != nil {
		return t, err
	}
	defer st.Close()
	return timedLoad(ctx, g, n, batch, storePut(st))
}

// openBenchStore opens a store over d and adds the scopes.
func openBenchStore(ctx context.Context, d ds.Batching, scopes []reconcile.Scope, opts ...node.StoreOption) (*node.Store, error) {
	st, err := node.OpenStore(ctx, d, opts...)
	if err != nil {
		return nil, err
	}
	for _, sc := range scopes {
		if err := st.AddScope(ctx, sc); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// storePut returns a put function for timedLoad that Puts each batch in
// one call and fails unless the call added every message.
func storePut(st *node.Store) func(context.Context, []reconcile.Message) error {
	return func(ctx context.Context, msgs []reconcile.Message) error {
		res, err := st.Put(ctx, msgs...)
		if err != nil {
			return err
		}
		if len(res.Added) != len(msgs) {
			return fmt.Errorf("put added %d of %d messages (%d duplicates, %d rejected)",
				len(res.Added), len(msgs), res.Duplicates, len(res.Rejected))
		}
		return nil
	}
}

// freshLevelDB opens a new LevelDB with node.OpenLevelDB (the store's
// own database and options) in a new folder under work. The returned
// function closes and removes it, and sets *err if closing fails and
// nothing else did. The stages before are written out first (settle).
func freshLevelDB(work, prefix string) (ds.Batching, func(*error), error) {
	path, err := os.MkdirTemp(work, prefix)
	if err != nil {
		return nil, nil, err
	}
	d, err := node.OpenLevelDB(path)
	if err != nil {
		os.RemoveAll(path)
		return nil, nil, err
	}
	settle()
	return d, func(err *error) {
		if cerr := d.Close(); *err == nil {
			*err = cerr
		}
		os.RemoveAll(path)
	}, nil
}
