package main

import (
	"fmt"
	"io"
)

// kibPerMiB converts the KiB of RSS figures.
const kibPerMiB = 1024

// printCatchup writes the table of one size, then one figure line per
// figure. Ratios are taken run by run (the three kinds of a run ran side
// by side) and summarized over the runs.
func printCatchup(w io.Writer, o options, r catchupResult) {
	fig := &figures{mode: modeCatchup, n: r.n}
	t := &table{
		title: fmt.Sprintf("catch-up: n=%s messages of %d-byte payloads, one scope, TCP on 127.0.0.1; receiver and baselines each in a child process; %d run(s), kinds alternating; median [min–max]",
			thousands(float64(r.n)), livePayloadSize, len(r.catchup)),
		header: []string{"figure", "value", "target"},
	}
	build := r.build.total.Seconds()
	fig.value("build_seconds", "s", build)
	fig.value("build_msgs_per_sec", "msgs/s", r.build.rate())
	t.add("sender's store built (Store.Put, batches of 1,000)",
		fmt.Sprintf("%.2f s (%s msgs/s)", build, thousands(r.build.rate())))

	secs := func(runs []childRun) []float64 {
		out := make([]float64, 0, len(runs))
		for _, c := range runs {
			if c.err == nil {
				out = append(out, c.res.Seconds)
			}
		}
		return out
	}
	mib := func(runs []childRun, f func(childRun) int64) []float64 {
		out := make([]float64, len(runs))
		for i, c := range runs {
			out[i] = float64(f(c)) / kibPerMiB
		}
		return out
	}
	timeRow := func(label, name string, runs []childRun) {
		if xs := secs(runs); len(xs) == len(runs) && len(xs) > 0 {
			s := summarize(xs)
			fig.add(name, "s", s)
			t.add(label, spread(s, fixed(3))+" s")
		}
	}
	timeRow("raw puts (batches of 1,000, child)", "raw_puts_seconds", r.rawPuts)
	timeRow("raw stream copy (first byte to last, child)", "raw_stream_seconds", r.rawStream)
	timeRow("catch-up (first SyncNow to equal count and root)", "catchup_seconds", r.catchup)

	if r.failure != nil {
		fig.failed(r.failedKind, r.failure)
		t.add(r.failedKind, "FAILED (below)")
		if c := lastOf(r.catchup); c != nil && r.failedKind == kindCatchup {
			t.add("  failed catch-up: seconds, sessions", fmt.Sprintf("%.1f s, %d", c.res.Seconds, c.res.Sessions))
			t.add("  failed catch-up: messages stored", fmt.Sprintf("%s of %s", thousands(float64(c.res.Count)), thousands(float64(r.n))))
		}
		t.note("%s FAILED: %v", r.failedKind, r.failure)
	} else {
		cu, rp, rs := secs(r.catchup), secs(r.rawPuts), secs(r.rawStream)
		s := summarize(ratios(cu, rp))
		fig.add("catchup_raw_puts_ratio", "ratio", s)
		t.add("catch-up / raw puts", spread(s, fixed(2)), "≤ 2")
		s = summarize(ratios(cu, rs))
		fig.add("catchup_raw_stream_ratio", "ratio", s)
		t.add("catch-up / raw stream copy", spread(s, fixed(1)))
		per := make([]float64, len(cu))
		rate := make([]float64, len(cu))
		for i := range cu {
			per[i], rate[i] = cu[i]/float64(r.n)*1e6, float64(r.n)/cu[i]
		}
		s = summarize(rate)
		fig.add("catchup_msgs_per_sec", "msgs/s", s)
		t.add("catch-up messages/s", spread(s, thousands))
		s = summarize(per)
		fig.add("catchup_us_per_msg", "us", s)
		t.add("catch-up time per message", spread(s, fixed(2))+" µs")
		proc := make([]float64, len(r.catchup))
		for i, c := range r.catchup {
			proc[i] = c.wall.Seconds()
		}
		s = summarize(proc)
		fig.add("catchup_process_seconds", "s", s)
		t.add("catch-up child, whole process (start to exit)", spread(s, fixed(3))+" s")
		c := r.catchup[len(r.catchup)-1].res
		fig.value("sessions", "count", float64(c.Sessions))
		t.add("sessions (last run)", fmt.Sprint(c.Sessions))
		fig.value("wire_bytes", "bytes", float64(c.Bytes))
		fig.value("encoded_bytes", "bytes", float64(r.encoded))
		fig.value("wire_encoded_ratio", "ratio", float64(c.Bytes)/float64(r.encoded))
		t.add("wire bytes / messages' encoded size (last run)", fmt.Sprintf("%.3f (%s / %s bytes)",
			float64(c.Bytes)/float64(r.encoded), thousands(float64(c.Bytes)), thousands(float64(r.encoded))))
		raw := lastOf(r.rawStream).res.Bytes
		fig.value("raw_stream_bytes", "bytes", float64(raw))
		t.add("raw stream bytes / encoded size", fmt.Sprintf("%.3f", float64(raw)/float64(r.encoded)))
	}

	rss := func(label, name string, runs []childRun, target string) {
		if len(runs) == 0 {
			return
		}
		s := summarize(mib(runs, func(c childRun) int64 { return c.rssKiB }))
		fig.add(name, "MiB", s)
		t.add(label, spread(s, fixed(0))+" MiB", target)
	}
	rss("receiver peak RSS (VmHWM)", "receiver_rss_mib", r.catchup, "≤ 256 MiB at 1M")
	rss("raw puts child peak RSS", "raw_puts_rss_mib", r.rawPuts, "")
	rss("raw stream child peak RSS", "raw_stream_rss_mib", r.rawStream, "")
	if len(r.catchup) > 0 {
		s := summarize(mib(r.catchup, func(c childRun) int64 { return c.rusageKiB }))
		fig.add("receiver_rusage_maxrss_mib", "MiB", s)
		p := summarize(mib(r.catchup, func(c childRun) int64 { return c.parentKiB }))
		fig.add("parent_rss_at_spawn_mib", "MiB", p)
		t.add("  receiver ru_maxrss (wait4), parent's peak at spawn",
			fmt.Sprintf("%s MiB, %s MiB", spread(s, fixed(0)), spread(p, fixed(0))))
	}
	fig.value("sender_rss_mib", "MiB", float64(r.senderKiB)/kibPerMiB)
	t.add("sender (this process) peak RSS", fmt.Sprintf("%.0f MiB", float64(r.senderKiB)/kibPerMiB))

	if k := r.kill; k != nil {
		fig.value("kill_kills", "count", float64(k.done))
		fig.value("kill_wall_seconds", "s", k.wall.Seconds())
		fig.value("kill_rss_mib", "MiB", float64(k.rssKiB)/kibPerMiB)
		verdict := "equal to the sender's"
		if k.err != nil {
			fig.failed("kill", k.err)
			verdict = "FAILED (below)"
			t.note("kill run FAILED: %v", k.err)
		} else {
			fig.value("kill_ok", "count", 1)
		}
		t.add(fmt.Sprintf("kill run (-kill %d): SIGKILLs made", k.asked), fmt.Sprintf("%d of %d", k.done, k.asked))
		t.add("kill run: receiver processes", fmt.Sprint(k.incarnations))
		t.add("kill run: time over all processes, starts included", fmt.Sprintf("%.2f s", k.wall.Seconds()))
		t.add("kill run: peak RSS of any receiver", fmt.Sprintf("%.0f MiB", float64(k.rssKiB)/kibPerMiB))
		t.add("kill run: final count and root", verdict)
	}
	t.note("Peak RSS is the child's own high-water mark (VmHWM); ru_maxrss from wait4 also counts the parent's peak on Linux, see README.")
	t.print(w)
	fig.print(w)
	fmt.Fprintln(w)
}

// printScaling writes how the time per message grows between the sizes,
// against the first size.
func printScaling(w io.Writer, all []catchupResult) {
	t := &table{
		title:  "catch-up scaling: time per message against the first size",
		header: []string{"n", "µs per message", "× first", "target"},
	}
	first := 0.0
	for _, r := range all {
		if r.failure != nil {
			t.add(thousands(float64(r.n)), "failed")
			fig := &figures{mode: modeCatchup, n: r.n}
			fig.failed("us_per_msg_scaling", r.failure)
			fig.print(w)
			continue
		}
		var per []float64
		for _, c := range r.catchup {
			per = append(per, c.res.Seconds/float64(r.n)*1e6)
		}
		us := summarize(per).med
		if first == 0 {
			first = us
			t.add(thousands(float64(r.n)), fmt.Sprintf("%.2f", us), "1.00")
			continue
		}
		fig := &figures{mode: modeCatchup, n: r.n}
		fig.value(fmt.Sprintf("us_per_msg_vs_n%d", all[0].n), "ratio", us/first)
		fig.print(w)
		t.add(thousands(float64(r.n)), fmt.Sprintf("%.2f", us), fmt.Sprintf("%.2f", us/first), "≤ 1.25")
	}
	t.print(w)
}

// lastOf returns the last run, nil if none.
func lastOf(runs []childRun) *childRun {
	if len(runs) == 0 {
		return nil
	}
	return &runs[len(runs)-1]
}
