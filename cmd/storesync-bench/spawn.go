package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// childGrace is how long past its own -timeout the parent lets a child
// run before killing it: time to print its failure.
const childGrace = 15 * time.Second

// rssPoll is how often the parent reads a running child's peak RSS.
const rssPoll = 50 * time.Millisecond

// childRun is a finished child process as the parent saw it.
type childRun struct {
	res  childResult   // its result line, if it printed one
	wall time.Duration // from start to exit, process start included
	// rssKiB is the child's peak RSS (VmHWM): its own report at exit, or
	// for a child that did not report, the last of the parent's reads
	// every rssPoll. 0 if unknown.
	rssKiB int64
	// rusageKiB is ru_maxrss from wait4, and parentKiB the parent's own
	// peak RSS when it started the child: on Linux rusageKiB is at least
	// parentKiB whatever the child used (see vmHWMKiB).
	rusageKiB, parentKiB int64
	signal               bool  // it ended on a signal (a kill)
	err                  error // why it failed: its own error, an exit status, a timeout
}

// spawn runs the tool as a child process with a and waits for it. Its
// stderr goes to ours; its stdout holds JSON lines (childResult):
// onProgress, if not nil, gets every progress line, with the process so
// that it may kill it. The error is for the parent's own failures (no
// executable, the parent's ctx cancelled); the child's failures are in
// childRun.err.
func spawn(ctx context.Context, a childArgs, onProgress func(*os.Process, childResult)) (childRun, error) {
	var r childRun
	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	cctx, cancel := context.WithTimeout(ctx, a.timeout+childGrace)
	defer cancel()
	cmd := exec.CommandContext(cctx, exe, append([]string{childCommand}, a.args()...)...)
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	r.parentKiB = selfPeakRSSKiB()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("start %s child: %w", a.kind, err)
	}
	polled := pollRSS(cmd.Process.Pid)
	got := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var line childResult
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			fmt.Fprintf(os.Stderr, "%s child stdout: %s\n", a.kind, sc.Text())
			continue
		}
		if line.Kind == kindProgress {
			if onProgress != nil {
				onProgress(cmd.Process, line)
			}
			continue
		}
		r.res, got = line, true
	}
	waitErr := cmd.Wait()
	r.wall = time.Since(start)
	r.rssKiB = max(r.res.PeakRSSKiB, polled())
	if ps := cmd.ProcessState; ps != nil {
		r.rusageKiB = rusageMaxRSSKiB(ps)
		r.signal = ps.ExitCode() == -1
	}
	switch {
	case ctx.Err() != nil:
		return r, ctx.Err()
	case cctx.Err() != nil:
		r.err = fmt.Errorf("%s child still running %s after -timeout %s: killed", a.kind, childGrace, a.timeout)
	case got && !r.res.OK:
		r.err = errors.New(r.res.Error)
	case waitErr != nil:
		r.err = fmt.Errorf("%s child: %w", a.kind, waitErr)
	case !got:
		r.err = fmt.Errorf("%s child exited without a result", a.kind)
	}
	return r, nil
}

// pollRSS reads the peak RSS of process pid every rssPoll until the
// returned function is called, after the process has exited, which
// returns the last value read.
func pollRSS(pid int) func() int64 {
	stop := make(chan struct{})
	done := make(chan int64)
	go func() {
		var peak int64
		t := time.NewTicker(rssPoll)
		defer t.Stop()
		for {
			peak = max(peak, vmHWMKiB(strconv.Itoa(pid)))
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		return <-done
	}
}
