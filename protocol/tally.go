package protocol

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/reconcile"
)

// tally adds up the catch-up of one scope over its ranges and peers, for
// the report and for progress. Safe for concurrent use: the workers of a
// catch-up share it.
type tally struct {
	scope reconcile.Scope

	mu       sync.Mutex
	ranges   map[reconcile.Key]*rangeTally // by the range's Hi
	streamed int                           // messages streamed: stored, held already, or rejected
	received int                           // of them, new to the store
	rejected int
	bytes    int64
}

// rangeTally is what one range has streamed, and what its last header
// said was left when its stream began.
type rangeTally struct{ streamed, base, left int }

func newTally(sc reconcile.Scope) *tally {
	return &tally{scope: sc, ranges: make(map[reconcile.Key]*rangeTally)}
}

func (t *tally) rangeOf(hi reconcile.Key) *rangeTally {
	r := t.ranges[hi]
	if r == nil {
		r = &rangeTally{}
		t.ranges[hi] = r
	}
	return r
}

// expect records that the range ending at hi has n messages left, as a
// header or a summary says.
func (t *tally) expect(hi reconcile.Key, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rangeOf(hi)
	r.base, r.left = r.streamed, n
}

// add counts a stored batch of the range ending at hi and reports
// progress.
func (t *tally) add(ctx context.Context, p peer.ID, hi reconcile.Key, received, streamed, rejected int, bytes int64) {
	t.mu.Lock()
	t.rangeOf(hi).streamed += streamed
	t.streamed += streamed
	t.received += received
	t.rejected += rejected
	t.bytes += bytes
	pr := Progress{Kind: ProgressCatchUp, Peer: p, Scope: t.scope, Done: t.streamed, Total: t.total(), Bytes: t.bytes}
	t.mu.Unlock()
	progressOf(ctx)(pr)
}

// total is what the ranges are expected to hold in all, never less than
// what they streamed.
func (t *tally) total() int {
	n := 0
	for _, r := range t.ranges {
		n += max(r.base+r.left, r.streamed)
	}
	return n
}
