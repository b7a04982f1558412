package main

import (
	"fmt"
	"io"
)

// printSnapshot writes the snapshot table, then one figure line per
// figure. Ratios are taken run by run and summarized over the runs.
func printSnapshot(w io.Writer, o options, build loadTiming, runs []snapshotRun) {
	pick := func(f func(snapshotRun) float64) []float64 {
		out := make([]float64, len(runs))
		for i, r := range runs {
			out[i] = f(r)
		}
		return out
	}
	n := float64(o.n)
	raw := pick(func(r snapshotRun) float64 { return r.raw.total.Seconds() })
	export := pick(func(r snapshotRun) float64 { return r.export.Seconds() })
	imp := pick(func(r snapshotRun) float64 { return r.total.Seconds() })
	kept := pick(func(r snapshotRun) float64 { return r.keptT.Seconds() })
	verify := pick(func(r snapshotRun) float64 { return r.kept.Verify.Seconds() })
	store := pick(func(r snapshotRun) float64 { return r.kept.Store.Seconds() })
	both := pick(func(r snapshotRun) float64 { return (r.export + r.total).Seconds() })
	rates := func(secs []float64) []float64 {
		out := make([]float64, len(secs))
		for i, s := range secs {
			out[i] = n / s
		}
		return out
	}

	fig := &figures{mode: modeSnapshot, n: o.n}
	secs := func(name string, xs []float64) string {
		s := summarize(xs)
		fig.add(name+"_seconds", "s", s)
		r := summarize(rates(xs))
		fig.add(name+"_msgs_per_sec", "msgs/s", r)
		return spread(s, fixed(2)) + " s (" + thousands(r.med) + " msgs/s)"
	}
	ratio := func(name string, a, b []float64) string {
		s := summarize(ratios(a, b))
		fig.add(name, "ratio", s)
		return spread(s, fixed(2))
	}

	t := &table{
		title: fmt.Sprintf("snapshot: n=%s messages of %d-byte payloads, one scope, LevelDB on disk; %d run(s), kinds alternating; median [min–max]",
			thousands(n), livePayloadSize, len(runs)),
		header: []string{"figure", "value", "target"},
	}
	t.add("raw puts (batches of 1,000)", secs("raw", raw))
	t.add("export (ExportFile: read, compress, write, fsync)", secs("export", export))
	t.add("import into an empty store (one pass)", secs("import", imp))
	t.add("import / raw puts", ratio("import_raw_ratio", imp, raw))
	t.add("export + import / raw puts", ratio("export_import_raw_ratio", both, raw), "≤ 2")
	t.add("import into a scope holding one message (two passes)", secs("kept_import", kept))
	t.add("  of which verification (read the whole file first)", secs("verify", verify))
	t.add("  of which storing (as Put stores)", secs("store", store))
	t.add("two-pass import / raw puts", ratio("kept_import_raw_ratio", kept, raw))
	size := float64(runs[0].size)
	fig.value("file_bytes", "bytes", size)
	fig.value("file_bytes_per_msg", "bytes", size/n)
	t.add("file size", fmt.Sprintf("%s bytes (%.1f a message)", thousands(size), size/n))
	fig.value("build_msgs_per_sec", "msgs/s", build.rate())
	t.note("The exported scope was built once with Store.Put in batches of 1,000, at %s msgs/s; it is not part of any figure.", thousands(build.rate()))
	t.print(w)

	fmt.Fprintf(w, "bench mode=%s n=%d setup payload=%d batch=%d runs=%d\n", modeSnapshot, o.n, livePayloadSize, ingestBatch, len(runs))
	fig.print(w)
}
