package main

import (
	"context"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// fifths is how many successive parts a load is timed in, to show whether
// the rate falls as the store grows.
const fifths = 5

// loadTiming is the time a load spent writing, in all and per successive
// fifth of its messages.
type loadTiming struct {
	msgs  int
	total time.Duration
	part  [fifths]time.Duration
	count [fifths]int
}

// rate returns messages per second over the whole load.
func (t loadTiming) rate() float64 { return float64(t.msgs) / t.total.Seconds() }

// partRate returns messages per second over fifth i.
func (t loadTiming) partRate(i int) float64 { return float64(t.count[i]) / t.part[i].Seconds() }

// timedLoad draws n messages from g in batches of batch and hands each
// batch to put, in order. Only put is timed: drawing the messages is not
// the work being measured, and a load of any size needs only one batch of
// them in memory. A batch counts in the fifth its first message falls in.
func timedLoad(ctx context.Context, g *generator, n, batch int, put func(context.Context, []reconcile.Message) error) (loadTiming, error) {
	t := loadTiming{msgs: n}
	buf := make([]reconcile.Message, batch)
	for i := 0; i < n; i += batch {
		if err := ctx.Err(); err != nil {
			return t, err
		}
		msgs := buf[:min(batch, n-i)]
		g.fill(msgs)
		start := time.Now()
		if err := put(ctx, msgs); err != nil {
			return t, err
		}
		d := time.Since(start)
		f := i * fifths / n
		t.total += d
		t.part[f] += d
		t.count[f] += len(msgs)
	}
	return t, nil
}

// countBefore returns how many messages the fifths before fifth i hold.
func (t loadTiming) countBefore(i int) int {
	n := 0
	for j := range i {
		n += t.count[j]
	}
	return n
}
