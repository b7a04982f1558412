package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"
)

// killJitter bounds the random delay between the progress line that
// chooses a kill and the kill, so that kills land at any point of the
// receiver's work, not just after it has printed.
const killJitter = 20 * time.Millisecond

// killResult is a catch-up whose receiver was killed and restarted.
type killResult struct {
	asked, done  int           // kills asked for, and made
	incarnations int           // receiver processes started
	wall         time.Duration // over every process, starts included
	rssKiB       int64         // the largest peak RSS of any of them
	last         childRun      // the process that finished
	err          error         // nil if it ended with the sender's count and root
}

// killRun runs a catch-up receiver in a.dir and kills it with SIGKILL
// kills times at random moments of the catch-up, each time starting a
// new one on the same folder, and checks that the last one ends with the
// sender's count and root (a.count, a.root).
//
// The moments are drawn from the receiver's progress: kill i comes once
// the store holds about (i + u) / (kills + 1) of the messages, u uniform
// in [0, 1), plus a random delay below killJitter, so every kill falls
// inside the catch-up and they spread over it. A receiver that finishes
// first makes fewer kills, which the result shows.
func killRun(ctx context.Context, a childArgs, kills int, seed uint64) (killResult, error) {
	r := killResult{asked: kills}
	rng := rand.New(rand.NewPCG(seed, 0xdead))
	at := make([]uint64, kills)
	for i := range at {
		at[i] = max(1, uint64(float64(a.count)*(float64(i)+rng.Float64())/float64(kills+1)))
	}
	a.progress = true
	for {
		killing := false
		onProgress := func(p *os.Process, line childResult) {
			if killing || r.done == len(at) || line.Count < at[r.done] {
				return
			}
			killing = true
			time.AfterFunc(time.Duration(rng.Int64N(int64(killJitter))), func() { _ = p.Kill() })
		}
		run, err := spawn(ctx, a, onProgress)
		if err != nil {
			return r, err
		}
		r.incarnations++
		r.wall += run.wall
		r.rssKiB = max(r.rssKiB, run.rssKiB)
		if killing && run.signal {
			r.done++
			fmt.Fprintf(os.Stderr, "kill run: killed receiver %d after %.2fs\n", r.incarnations, run.wall.Seconds())
			continue
		}
		r.last = run
		switch {
		case run.err != nil:
			r.err = run.err
		case run.res.Count != a.count || run.res.Root != a.root:
			r.err = fmt.Errorf("ended with %d messages and root %s, want %d and %s", run.res.Count, run.res.Root, a.count, a.root)
		}
		return r, nil
	}
}
