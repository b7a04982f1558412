package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// runCases builds the stores once and prints one line per case and
// repetition, each repetition with other missing keys; with more than one,
// a summary line per case follows, with the median session times.
func runCases(ctx context.Context, work string, msgs []reconcile.Message, cases []benchCase, seed uint64, reps int, opts ...reconcile.Option) error {
	if len(cases) == 0 {
		return nil
	}
	keys := keysOf(msgs)
	trees, err := openTrees(ctx, work, keys, opts...)
	if err != nil {
		return err
	}
	defer trees.close()
	start := time.Now()
	base := newBaseline(keys)
	fmt.Fprintf(os.Stderr, "built the negentropy store in %.1fs\n", time.Since(start).Seconds())
	if err := warmUp(ctx, trees, base, keys, seed); err != nil {
		return err
	}
	sample, err := leafSample(ctx, trees.db.Batching, seed)
	if err != nil {
		return err
	}
	for _, c := range cases {
		if err := ctx.Err(); err != nil {
			return err
		}
		var ours, neg []float64
		for r := range reps {
			// Repetitions miss other keys: seeds far from the warm-up's.
			line, secs, err := runCase(ctx, trees, base, keys, c, seed+uint64(r)*7919)
			if err != nil {
				return fmt.Errorf("case=%s d=%d: %w", c.mode, c.d, err)
			}
			ours, neg = append(ours, secs[0]), append(neg, secs[1])
			read, err := readLatency(ctx, trees.db.Batching, sample)
			if err != nil {
				return err
			}
			fmt.Printf("%s leaf_read_us=%.1f\n", line, float64(read.Nanoseconds())/1000)
		}
		if reps > 1 {
			o, b := summarize(ours), summarize(neg)
			fmt.Printf("summary case=%s n=%d d=%d reps=%d seconds_median=%.6f seconds_min=%.6f seconds_max=%.6f negentropy_seconds_median=%.4f\n",
				c.mode, len(keys), c.d, reps, o.med, o.min, o.max, b.med)
		}
	}
	return nil
}

// warmUp runs the untimed session before the timed ones. The first
// session that needs a sketch of a subtree reads it once to fill the
// tree's cell memos; the timed sessions come after one such session on
// each tree, as on a node that has been serving. base may be nil.
func warmUp(ctx context.Context, trees *treePair, base *baseline, keys []reconcile.Key, seed uint64) error {
	start := time.Now()
	var err error
	pprof.Do(ctx, pprof.Labels("warmup", "yes"), func(ctx context.Context) {
		_, _, err = runCase(ctx, trees, base, keys, benchCase{mode: modeScattered, d: 10}, seed+1)
	})
	if err != nil {
		return fmt.Errorf("warm-up session: %w", err)
	}
	fmt.Fprintf(os.Stderr, "n=%d: warm-up session (fills the cell memos) in %.1fs\n", len(keys), time.Since(start).Seconds())
	return nil
}

// runCase takes the case's missing keys out of B and A, reconciles with
// both implementations, checks that both found exactly the difference,
// puts the keys back and returns the result line, with what both stores
// keep in memory (their cell memos and node caches) and the tool's peak
// resident memory so far (which holds every message and negentropy's
// vectors too). With no baseline (base nil) it runs and checks ours
// alone and returns its seconds, with no line.
func runCase(ctx context.Context, trees *treePair, base *baseline, keys []reconcile.Key, c benchCase, seed uint64) (line string, seconds [2]float64, err error) {
	idxB, idxA := c.missing(len(keys), seed)
	fromB, fromA := pick(keys, idxB), pick(keys, idxA)
	need, have := hexes(fromB), hexes(fromA)

	if err := trees.remove(ctx, fromB, fromA); err != nil {
		return "", seconds, err
	}
	ours, err := runOurs(ctx, trees, need, have)
	if err != nil {
		return "", seconds, err
	}
	if err := trees.restore(ctx, fromB, fromA); err != nil {
		return "", seconds, err
	}

	if base == nil {
		return "", [2]float64{ours.seconds, 0}, nil
	}
	neg, err := base.runBaseline(idxB, idxA)
	if err != nil {
		return "", seconds, err
	}
	// Both implementations are checked against the same expected sets,
	// so passing both checks means they found the same difference. On
	// disjoint halves the baseline reports IDs the client holds as
	// lacking (about one in a thousand at a million); that is reported,
	// not fatal, so that its cost can still be compared.
	for _, err := range []error{sameSet("negentropy client HaveNots", neg.haveNots, need),
		sameSet("negentropy client Haves", neg.haves, have)} {
		switch {
		case err != nil && c.mode == modeDisjoint:
			fmt.Fprintf(os.Stderr, "baseline wrong on %s: %v\n", c.mode, err)
		case err != nil:
			return "", seconds, err
		}
	}

	seconds = [2]float64{ours.seconds, neg.seconds}
	bytes := ours.st.InitiatorBytes + ours.st.ResponderBytes
	lower := int64(c.d) * reconcile.HashSize
	ca, cb := trees.a.CacheStats(), trees.b.CacheStats()
	return fmt.Sprintf("case=%s n=%d d=%d bytes=%d roundtrips=%d lowerbound=%d ratio=%s "+
		"negentropy_bytes=%d negentropy_roundtrips=%d "+
		"initiator_bytes=%d responder_bytes=%d negentropy_ratio=%s seconds=%.5f negentropy_seconds=%.4f "+
		"node_reads=%d cell_memo_mib=%.1f node_cache_entries=%d key_index_mib=%.1f peak_rss_mib=%d",
		c.mode, len(keys), c.d, bytes, ours.st.RoundTrips, lower, ratio(bytes, lower),
		neg.bytes, neg.roundTrips,
		ours.st.InitiatorBytes, ours.st.ResponderBytes, ratio(neg.bytes, lower), ours.seconds, neg.seconds,
		ours.reads, float64(ca.CellBytes+cb.CellBytes)/(1<<20), ca.NodeEntries+cb.NodeEntries,
		float64(ca.IndexBytes+cb.IndexBytes)/(1<<20), vmHWMKiB("self")>>10), seconds, nil
}

// pick returns the keys at the ascending indices idx.
func pick(keys []reconcile.Key, idx []int) []reconcile.Key {
	out := make([]reconcile.Key, len(idx))
	for i, j := range idx {
		out[i] = keys[j]
	}
	return out
}

// ratio formats bytes over the lower bound, which is zero, and the ratio
// meaningless, when the stores are equal.
func ratio(bytes, lower int64) string {
	if lower == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(bytes)/float64(lower))
}
