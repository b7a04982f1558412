package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/storesync/storesync/reconcile"
)

const (
	// barWidth is the number of cells of the progress bar.
	barWidth = 24
	// redrawEvery throttles the bar on a terminal: smooth enough to read,
	// rare enough to cost nothing.
	redrawEvery = 100 * time.Millisecond
	// logEvery throttles progress lines where no terminal shows a bar, so
	// that logs of a long sync stay short.
	logEvery = time.Second
)

// progressView shows the progress of a sync to a person: on a terminal a
// one-line bar rewritten in place, elsewhere a line at most once a
// second. It adds up the latest progress of every scope. It is not safe
// for concurrent use.
type progressView struct {
	w        io.Writer
	terminal bool
	now      func() time.Time
	every    time.Duration
	last     time.Time // of the last output, zero before the first
	scopes   map[reconcile.Scope]syncProgress
	drawn    int // width of the bar on screen, 0 if none

	// The rate counts from the first event: before it the session was
	// reconciling, which says nothing about how fast messages arrive.
	first     time.Time
	firstDone int
}

// newProgressView returns a view writing to w, timed by now; terminal
// says whether w is a terminal.
func newProgressView(w io.Writer, terminal bool, now func() time.Time) *progressView {
	every := logEvery
	if terminal {
		every = redrawEvery
	}
	return &progressView{w: w, terminal: terminal, now: now, every: every, scopes: make(map[reconcile.Scope]syncProgress)}
}

// update takes one progress event and shows the sum, unless it showed
// something too recently.
func (v *progressView) update(p syncProgress) {
	v.scopes[reconcile.Scope{PubsubTopic: p.PubsubTopic, ContentTopic: p.ContentTopic}] = p
	t := v.now()
	if v.first.IsZero() {
		v.first = t
		v.firstDone, _, _ = v.sum()
	}
	if !v.last.IsZero() && t.Sub(v.last) < v.every {
		return
	}
	v.last = t
	v.show(t)
}

// finish leaves the terminal's bar in its final state on a line of its
// own, so that what follows does not overwrite it.
func (v *progressView) finish() {
	if v.terminal && v.drawn > 0 {
		v.show(v.now())
		fmt.Fprintln(v.w)
		v.drawn = 0
	}
}

func (v *progressView) show(t time.Time) {
	done, total, bytes := v.sum()
	line := formatProgress(done, total, bytes, done-v.firstDone, t.Sub(v.first))
	if !v.terminal {
		fmt.Fprintf(v.w, "progress: %s\n", line)
		return
	}
	line = formatBar(done, total) + " " + line
	// Blank what is left of a longer previous line.
	pad := strings.Repeat(" ", max(v.drawn-len(line), 0))
	fmt.Fprintf(v.w, "\r%s%s", line, pad)
	v.drawn = len(line)
}

// sum adds up the latest progress of every scope.
func (v *progressView) sum() (done, total int, bytes int64) {
	for _, p := range v.scopes {
		done, total, bytes = done+p.Done, total+p.Total, bytes+p.Bytes
	}
	return done, total, bytes
}

// formatProgress describes a transfer: messages done of total, bytes,
// and the rate and time left from the messages moved in the time elapsed,
// as "1200/5000 messages  1.5 MiB  400 msg/s  ETA 10s".
func formatProgress(done, total int, bytes int64, moved int, elapsed time.Duration) string {
	rate, eta := "- msg/s", "ETA -"
	if elapsed > 0 && moved > 0 {
		r := float64(moved) / elapsed.Seconds()
		rate = fmt.Sprintf("%.0f msg/s", r)
		left := time.Duration(float64(max(total-done, 0)) / r * float64(time.Second))
		eta = "ETA " + left.Round(time.Second).String()
	}
	return fmt.Sprintf("%d/%d messages  %s  %s  %s", done, total, humanBytes(bytes), rate, eta)
}

// formatBar draws done of total as "[#####-----]".
func formatBar(done, total int) string {
	filled := barWidth
	if total > 0 {
		filled = min(barWidth*max(done, 0)/total, barWidth)
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled) + "]"
}

// humanBytes writes n bytes in binary units: "512 B", "1.5 KiB",
// "3.0 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
