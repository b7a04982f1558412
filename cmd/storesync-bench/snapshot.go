package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// snapshotRun is one run of the snapshot measurement.
type snapshotRun struct {
	raw    loadTiming        // raw batched puts of the n messages
	export time.Duration     // ExportFile of the scope holding them
	size   int64             // the file's length
	imp    node.ImportReport // into an empty store: one pass
	total  time.Duration     // ImportFile, start to end
	kept   node.ImportReport // into a scope holding a message: two passes
	keptT  time.Duration
}

// runSnapshot measures Store.ExportFile of a scope of n messages and
// Store.ImportFile of the file into an empty store (one pass), and into
// a store whose scope holds one of the messages (two passes), against raw batched
// LevelDB puts of the same records (rawWriter), and prints the table and
// the figure lines. The scope to export is built once, untimed; each run
// writes the raw records into a fresh LevelDB, exports, and imports into
// fresh LevelDBs, kinds side by side.
func runSnapshot(ctx context.Context, work string, o options) error {
	src, done, err := freshLevelDB(work, "source-")
	if err != nil {
		return err
	}
	defer done(&err)
	g := newGenerator(o.seed, livePayloadSize, 1)
	st, err := openBenchStore(ctx, src, g.scopes())
	if err != nil {
		return err
	}
	defer st.Close()
	build, err := timedLoad(ctx, g, o.n, ingestBatch, storePut(st))
	if err != nil {
		return fmt.Errorf("build the scope: %w", err)
	}
	fmt.Fprintf(os.Stderr, "snapshot: built the scope, %d messages at %.0f/s\n", o.n, build.rate())
	want, _ := st.Stats(g.scopes()[0])

	var runs []snapshotRun
	for r := range o.runs {
		run, err := snapshotOnce(ctx, work, o, st, want)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "snapshot run %d: raw %.0f/s, export %.2fs, import %.2fs, export+import/raw %.2f; into a kept scope %.2fs (verify %.2fs, store %.2fs)\n",
			r+1, run.raw.rate(), run.export.Seconds(), run.total.Seconds(),
			(run.export+run.total).Seconds()/run.raw.total.Seconds(),
			run.keptT.Seconds(), run.kept.Verify.Seconds(), run.kept.Store.Seconds())
		runs = append(runs, run)
	}
	printSnapshot(os.Stdout, o, build, runs)
	return nil
}

// snapshotOnce runs raw puts, an export of st's scope and the two
// imports of the file (timedImport), each checked against want.
func snapshotOnce(ctx context.Context, work string, o options, st *node.Store, want node.ScopeStats) (run snapshotRun, err error) {
	d, done, err := freshLevelDB(work, "raw-")
	if err != nil {
		return run, err
	}
	w := newRawWriter(d)
	run.raw, err = timedLoad(ctx, newGenerator(o.seed, livePayloadSize, 1), o.n, ingestBatch, w.write)
	done(&err)
	if err != nil {
		return run, fmt.Errorf("raw puts: %w", err)
	}

	path := filepath.Join(work, "scope.snap")
	defer os.Remove(path)
	settle()
	start := time.Now()
	h, err := st.ExportFile(ctx, want.Scope, path)
	if err != nil {
		return run, err
	}
	run.export, run.size = time.Since(start), h.Size
	if h.Count != want.Count || h.Root() != want.Root {
		return run, fmt.Errorf("export: %d messages, root %x; the store holds %d, root %x", h.Count, h.Root(), want.Count, want.Root)
	}

	if run.imp, run.total, err = timedImport(ctx, work, path, want, nil); err != nil {
		return run, err
	}
	// The source's first message: a scope that holds it takes the import
	// in two passes.
	first := make([]reconcile.Message, 1)
	newGenerator(o.seed, livePayloadSize, 1).fill(first)
	run.kept, run.keptT, err = timedImport(ctx, work, path, want, first)
	return run, err
}

// timedImport imports the file at path into a store on a fresh LevelDB,
// which holds the messages held beforehand (untimed), and checks the
// result against want.
func timedImport(ctx context.Context, work, path string, want node.ScopeStats, held []reconcile.Message) (rep node.ImportReport, took time.Duration, err error) {
	dst, done, err := freshLevelDB(work, "import-")
	if err != nil {
		return rep, 0, err
	}
	defer done(&err)
	s, err := node.OpenStore(ctx, dst)
	if err != nil {
		return rep, 0, err
	}
	defer s.Close()
	if len(held) > 0 {
		if err := s.AddScope(ctx, want.Scope); err != nil {
			return rep, 0, err
		}
		if _, err := s.Put(ctx, held...); err != nil {
			return rep, 0, err
		}
	}
	start := time.Now()
	rep, err = s.ImportFile(ctx, path)
	took = time.Since(start)
	if err != nil {
		return rep, took, err
	}
	if got, _ := s.Stats(want.Scope); got.Count != want.Count || got.Root != want.Root {
		return rep, took, fmt.Errorf("import: %d messages, root %x; want %d, root %x", got.Count, got.Root, want.Count, want.Root)
	}
	return rep, took, nil
}
