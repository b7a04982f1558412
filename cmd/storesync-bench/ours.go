package main

import (
	"context"
	"fmt"
	"runtime/pprof"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// frameLimit is the frame size of both implementations, so that neither
// gains round trips over the other from a smaller frame.
const frameLimit = 1 << 20

// oursResult is what one storesync session cost.
type oursResult struct {
	st      reconcile.Stats
	seconds float64
	reads   int64 // records both stores read during the session
}

// runOurs reconciles the whole scope with B as the initiator and A as the
// responder, and checks that both sides learned exactly that B lacks
// need and A lacks have (sorted hex hashes), and nothing else.
func runOurs(ctx context.Context, p *treePair, need, have []string) (oursResult, error) {
	params := reconcile.DefaultParams()
	params.FrameSize = frameLimit
	reads := p.db.reads.Load()
	start := time.Now()
	var (
		ini, res reconcile.Diff
		st       reconcile.Stats
		err      error
	)
	// Profiles (-cpuprofile) tell the sessions apart with
	// -tagfocus=session=ours, and the warm-up with -tagignore=warmup=yes.
	pprof.Do(ctx, pprof.Labels("session", "ours"), func(ctx context.Context) {
		ini, res, st, err = reconcile.Reconcile(ctx, p.b, p.a, reconcile.Key{}, reconcile.End, params)
	})
	elapsed := time.Since(start).Seconds()
	reads = p.db.reads.Load() - reads
	if err != nil {
		return oursResult{}, fmt.Errorf("storesync: %w", err)
	}
	checks := []struct {
		what      string
		got, want []string
	}{
		{"storesync initiator Need", hexes(ini.Need), need},
		{"storesync initiator Have", hexes(ini.Have), have},
		{"storesync responder Need", hexes(res.Need), have},
		{"storesync responder Have", hexes(res.Have), need},
	}
	for _, c := range checks {
		if err := sameSet(c.what, c.got, c.want); err != nil {
			return oursResult{}, err
		}
	}
	return oursResult{st: st, seconds: elapsed, reads: reads}, nil
}
