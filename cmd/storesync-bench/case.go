package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// runCases builds the stores once and prints one line per case.
func runCases(ctx context.Context, work string, msgs []reconcile.Message, cases []benchCase, seed uint64) error {
	if len(cases) == 0 {
		return nil
	}
	keys := keysOf(msgs)
	trees, err := openTrees(ctx, work, keys)
	if err != nil {
		return err
	}
	defer trees.close()
	start := time.Now()
	base := newBaseline(keys)
	fmt.Fprintf(os.Stderr, "built the negentropy store in %.1fs\n", time.Since(start).Seconds())
	for _, c := range cases {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := runCase(ctx, trees, base, keys, c, seed)
		if err != nil {
			return fmt.Errorf("case=%s d=%d: %w", c.mode, c.d, err)
		}
		fmt.Println(line)
	}
	return nil
}

// runCase takes the case's missing keys out of B, reconciles with both
// implementations, checks that both found exactly the missing set, puts
// the keys back and returns the result line.
func runCase(ctx context.Context, trees *treePair, base *baseline, keys []reconcile.Key, c benchCase, seed uint64) (string, error) {
	idx := c.missing(len(keys), seed)
	miss := make([]reconcile.Key, len(idx))
	for i, j := range idx {
		miss[i] = keys[j]
	}
	want := hexes(miss)

	if err := trees.remove(ctx, miss); err != nil {
		return "", err
	}
	ours, err := runOurs(ctx, trees, want)
	if err != nil {
		return "", err
	}
	if err := trees.restore(ctx, miss); err != nil {
		return "", err
	}

	neg, err := base.runBaseline(idx)
	if err != nil {
		return "", err
	}
	// Both implementations are checked against the same expected set,
	// so passing both checks means they found the same difference.
	if err := sameSet("negentropy client HaveNots", neg.haveNots, want); err != nil {
		return "", err
	}
	if err := sameSet("negentropy client Haves", neg.haves, nil); err != nil {
		return "", err
	}

	bytes := ours.st.InitiatorBytes + ours.st.ResponderBytes
	lower := int64(c.d) * reconcile.HashSize
	return fmt.Sprintf("case=%s n=%d d=%d bytes=%d roundtrips=%d lowerbound=%d ratio=%s "+
		"negentropy_bytes=%d negentropy_roundtrips=%d "+
		"initiator_bytes=%d responder_bytes=%d negentropy_ratio=%s seconds=%.4f negentropy_seconds=%.4f",
		c.mode, len(keys), c.d, bytes, ours.st.RoundTrips, lower, ratio(bytes, lower),
		neg.bytes, neg.roundTrips,
		ours.st.InitiatorBytes, ours.st.ResponderBytes, ratio(neg.bytes, lower), ours.seconds, neg.seconds), nil
}

// ratio formats bytes over the lower bound, which is zero, and the ratio
// meaningless, when the stores are equal.
func ratio(bytes, lower int64) string {
	if lower == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(bytes)/float64(lower))
}
