package main

import (
	"fmt"
	"io"
)

// printIngest writes the store-ingest tables, then one figure line per
// figure. Ratios are taken run by run (store and raw of the same run
// ran side by side) and summarized over the runs.
func printIngest(w io.Writer, o options, runs []ingestRun) {
	pick := func(f func(ingestRun) float64) []float64 {
		out := make([]float64, len(runs))
		for i, r := range runs {
			out[i] = f(r)
		}
		return out
	}
	raw := pick(func(r ingestRun) float64 { return r.raw.rate() })
	store := pick(func(r ingestRun) float64 { return r.store.rate() })
	indexed := pick(func(r ingestRun) float64 { return r.indexed.rate() })
	rawSingle := pick(func(r ingestRun) float64 { return r.rawSingle.rate() })
	storeSingle := pick(func(r ingestRun) float64 { return r.storeSingle.rate() })
	one := pick(func(r ingestRun) float64 { return r.oneScope.rate() })
	multi := pick(func(r ingestRun) float64 { return r.multiScope.rate() })
	rawOne := pick(func(r ingestRun) float64 { return r.rawOne.rate() })
	rawMulti := pick(func(r ingestRun) float64 { return r.rawMulti.rate() })
	oneSingle := pick(func(r ingestRun) float64 { return r.oneSingle.rate() })
	multiSingle := pick(func(r ingestRun) float64 { return r.multiSingle.rate() })

	fig := &figures{mode: modeIngest, n: o.n}
	rate := func(name string, xs []float64) string {
		s := summarize(xs)
		fig.add(name, "msgs/s", s)
		return spread(s, thousands)
	}
	ratio := func(name string, a, b []float64) string {
		s := summarize(ratios(a, b))
		fig.add(name, "ratio", s)
		return spread(s, fixed(2))
	}

	t := &table{
		title: fmt.Sprintf("store ingest: n=%s messages of %d-byte payloads in timestamp order; %d run(s), kinds alternating; median [min–max]",
			thousands(float64(o.n)), livePayloadSize, len(runs)),
		header: []string{"figure", "msgs/s", "× raw batched", "other ratio", "target"},
	}
	t.add("raw puts, batches of 1,000", rate("raw_msgs_per_sec", raw))
	t.add("Store.Put, batches of 1,000", rate("store_msgs_per_sec", store),
		ratio("store_raw_ratio", store, raw), "", "≥ 0.6")
	t.add("Store.Put with the hash index (Store v3)", rate("indexed_msgs_per_sec", indexed),
		ratio("indexed_raw_ratio", indexed, raw), ratio("indexed_store_ratio", indexed, store)+" × Store.Put")
	t.add(fmt.Sprintf("(a) raw, 1-record batches, %s after n", thousands(float64(o.single))),
		rate("raw_single_msgs_per_sec", rawSingle), ratio("raw_single_raw_ratio", rawSingle, raw))
	t.add(fmt.Sprintf("(a) Store.Put, 1 message per call, %s after n", thousands(float64(o.single))),
		rate("store_single_msgs_per_sec", storeSingle), ratio("store_single_raw_ratio", storeSingle, raw),
		ratio("store_single_raw_single_ratio", storeSingle, rawSingle)+" × raw 1-record", "≥ 20,000 msgs/s")
	t.add(fmt.Sprintf("(c) raw, batches of 1,000 of 1 scope, × %d", o.calls),
		rate("raw_one_scope_msgs_per_sec", rawOne), ratio("raw_one_scope_raw_ratio", rawOne, raw))
	t.add(fmt.Sprintf("(c) Store.Put of 1,000 of 1 scope, × %d", o.calls),
		rate("one_scope_msgs_per_sec", one), ratio("one_scope_raw_ratio", one, raw),
		ratio("one_scope_raw_one_ratio", one, rawOne)+" × raw (c)")
	t.add(fmt.Sprintf("(b) raw, batches of 1,000 over %s scopes, × %d", thousands(liveScopes), o.calls),
		rate("raw_multi_scope_msgs_per_sec", rawMulti), ratio("raw_multi_scope_raw_ratio", rawMulti, raw),
		ratio("raw_multi_one_scope_ratio", rawMulti, rawOne)+" × raw (c)")
	t.add(fmt.Sprintf("(b) Store.Put of 1,000 over %s scopes, × %d", thousands(liveScopes), o.calls),
		rate("multi_scope_msgs_per_sec", multi), ratio("multi_scope_raw_ratio", multi, raw),
		ratio("multi_one_scope_ratio", multi, one)+" × (c); "+
			ratio("multi_scope_raw_multi_ratio", multi, rawMulti)+" × raw (b)", "(b) ≥ (c)")
	t.add(fmt.Sprintf("(d) Store.Put, 1 message per call, 1 scope, × %s", thousands(float64(o.single))),
		rate("one_scope_single_msgs_per_sec", oneSingle), ratio("one_scope_single_raw_ratio", oneSingle, raw))
	t.add(fmt.Sprintf("(d) Store.Put, 1 message per call, over %s scopes in turn, × %s", thousands(liveScopes), thousands(float64(o.single))),
		rate("multi_scope_single_msgs_per_sec", multiSingle), ratio("multi_scope_single_raw_ratio", multiSingle, raw),
		ratio("multi_one_scope_single_ratio", multiSingle, oneSingle)+" × 1 scope")
	t.note("(a) continues the bulk stores, which hold n messages; (b), (c) and (d) each start from an empty store.")
	t.note("Raw (b) against raw (c) is what spreading the same records over many scopes costs LevelDB itself.")
	t.print(w)

	ft := &table{
		title:  "store ingest by successive fifth of the bulk load (does the rate fall as the store grows?)",
		header: []string{"fifth", "messages", "raw msgs/s", "Store.Put msgs/s", "store/raw"},
	}
	var first, last []float64
	for i := range fifths {
		r := pick(func(r ingestRun) float64 { return r.raw.partRate(i) })
		s := pick(func(r ingestRun) float64 { return r.store.partRate(i) })
		from, to := runs[0].store.countBefore(i), runs[0].store.countBefore(i+1)
		ft.add(fmt.Sprint(i+1), thousands(float64(from))+"–"+thousands(float64(to)),
			rate(fmt.Sprintf("raw_fifth%d_msgs_per_sec", i+1), r),
			rate(fmt.Sprintf("store_fifth%d_msgs_per_sec", i+1), s),
			ratio(fmt.Sprintf("store_raw_ratio_fifth%d", i+1), s, r))
		switch i {
		case 0:
			first = ratios(s, r)
		case fifths - 1:
			last = ratios(s, r)
		}
	}
	trend := summarize(ratios(last, first))
	fig.add("store_raw_ratio_trend", "ratio", trend)
	ft.note("store/raw in the last fifth over the first: %s (1 = not falling; target: ≥ 0.6 throughout)", spread(trend, fixed(2)))
	ft.print(w)

	fmt.Fprintf(w, "bench mode=%s n=%d setup payload=%d batch=%d single_calls=%d scope_calls=%d scopes=%d runs=%d\n",
		modeIngest, o.n, livePayloadSize, ingestBatch, o.single, o.calls, liveScopes, len(runs))
	fig.print(w)
}
