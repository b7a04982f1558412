package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// catchupResult is every measurement of the catch-up at one size.
type catchupResult struct {
	n          int
	build      loadTiming // the sender's store, through Store.Put
	senderKiB  int64      // the parent's peak RSS after the runs
	encoded    int64      // sum of the messages' encoded sizes
	rawPuts    []childRun
	rawStream  []childRun
	catchup    []childRun
	kill       *killResult // with -kill
	failure    error       // the first run that failed, which ends the size
	failedKind string
}

// runCatchup measures the catch-up at every size of -n and prints each
// size's table as soon as it is done, then the scaling between sizes. A
// failed catch-up is reported, not hidden: the other sizes still run,
// and the tool then exits non-zero.
func runCatchup(ctx context.Context, work string, o options) error {
	var all []catchupResult
	var failed []int
	for _, n := range o.ns {
		o.n = n
		r, err := catchupSize(ctx, work, o)
		if err != nil {
			return fmt.Errorf("catch-up n=%d: %w", n, err)
		}
		printCatchup(os.Stdout, o, r)
		all = append(all, r)
		if r.failure != nil || (r.kill != nil && r.kill.err != nil) {
			failed = append(failed, n)
		}
	}
	if len(all) > 1 {
		printScaling(os.Stdout, all)
	}
	if len(failed) > 0 {
		return fmt.Errorf("catch-up failed at n=%v (see the report above)", failed)
	}
	return nil
}

// catchupSize builds the sender at o.n, then runs raw puts, the raw
// stream and the catch-up, alternately, o.runs times, each in a child
// process on a fresh data folder, and the kill run if asked. The error is
// for the harness failing; a failed child is recorded in the result.
func catchupSize(ctx context.Context, work string, o options) (r catchupResult, err error) {
	r.n = o.n
	fmt.Fprintf(os.Stderr, "catch-up n=%d: building the sender's store\n", o.n)
	s, err := startSender(ctx, work, o.n, o.seed)
	if err != nil {
		return r, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	r.build = s.build
	fmt.Fprintf(os.Stderr, "catch-up n=%d: sender built in %.1fs\n", o.n, s.build.total.Seconds())

	stream, encoded, err := encodeRawCopy(o.seed, o.n)
	if err != nil {
		return r, err
	}
	r.encoded = encoded
	base := childArgs{n: o.n, seed: o.seed, sender: s.addr, count: s.count, root: s.root, timeout: o.timeout}
	for run := 1; run <= o.runs && r.failure == nil; run++ {
		a := base
		a.kind = kindRawPuts
		rp, err := inFreshDir(work, a, func(a childArgs) (childRun, error) { return spawn(ctx, a, nil) })
		if err != nil {
			return r, err
		}
		r.rawPuts = append(r.rawPuts, rp)
		r.fail(kindRawPuts, rp.err)

		a.kind = kindRawStream
		rs, err := s.rawStream(ctx, a, stream)
		if err != nil {
			return r, err
		}
		r.rawStream = append(r.rawStream, rs)
		r.fail(kindRawStream, rs.err)

		a.kind = kindCatchup
		cu, err := inFreshDir(work, a, func(a childArgs) (childRun, error) { return spawn(ctx, a, nil) })
		if err != nil {
			return r, err
		}
		r.catchup = append(r.catchup, cu)
		r.fail(kindCatchup, cu.err)
		fmt.Fprintf(os.Stderr, "catch-up n=%d run %d: raw puts %.2fs, raw stream %.2fs, catch-up %.2fs (%s)\n",
			o.n, run, rp.res.Seconds, rs.res.Seconds, cu.res.Seconds, outcomeOf(cu.err))
	}
	if o.kill > 0 && r.failure == nil {
		a := base
		a.kind = kindCatchup
		k, err := inFreshDir(work, a, func(a childArgs) (killResult, error) { return killRun(ctx, a, o.kill, o.seed) })
		if err != nil {
			return r, err
		}
		r.kill = &k
		fmt.Fprintf(os.Stderr, "catch-up n=%d kill run: %d of %d kills, %s\n", o.n, k.done, k.asked, outcomeOf(k.err))
	}
	r.senderKiB = selfPeakRSSKiB()
	return r, nil
}

// fail records the first failure of the size.
func (r *catchupResult) fail(kind string, err error) {
	if err != nil && r.failure == nil {
		r.failure, r.failedKind = err, kind
	}
}

// inFreshDir runs f with a.dir set to a new folder under work, removed
// afterwards, once the runs before have been written out (settle).
func inFreshDir[T any](work string, a childArgs, f func(childArgs) (T, error)) (T, error) {
	dir, err := os.MkdirTemp(work, a.kind+"-")
	if err != nil {
		var zero T
		return zero, err
	}
	defer os.RemoveAll(dir)
	a.dir = dir
	settle()
	return f(a)
}

// outcomeOf describes an error for a progress line.
func outcomeOf(err error) string {
	if err == nil {
		return "ok"
	}
	return "FAILED: " + err.Error()
}
