package reconcile

import (
	"context"
	"fmt"

	"github.com/storesync/storesync/pb"
)

// The frame helpers of the internal tests, for the external ones.
var (
	DelimitedFrames = delimitedFrames
	ParseFrames     = parseFrames
)

// SetMaxNodeEntries sets the node size bound for a test and restores it
// when the test ends; such a test must not run in parallel.
func SetMaxNodeEntries(t interface{ Cleanup(func()) }, n int) {
	old := maxNodeEntries
	maxNodeEntries = n
	t.Cleanup(func() { maxNodeEntries = old })
}

// Level is the level of a key: the height up to which it closes nodes.
var Level = level

// SketchBytes returns cells [first, first+n) of the sketch of s's keys in
// [lo, hi), encoded: through the tree's memos for a *Tree, by reading
// the keys for any other Set.
func SketchBytes(ctx context.Context, s Set, lo, hi Key, first, n uint64) ([]byte, error) {
	cells, err := sketchCells(ctx, s, lo, hi, first, n)
	return encodeCells(nil, cells), err
}

// ReadSketchBytes is SketchBytes by reading the keys, whatever s is.
func ReadSketchBytes(ctx context.Context, s Set, lo, hi Key, first, n uint64) ([]byte, error) {
	cells := make([]cell, n)
	err := s.Iterate(ctx, lo, hi, func(k Key) error {
		addRange(cells, first, keyID(&k), 1)
		return nil
	})
	return encodeCells(nil, cells), err
}

// RaceScale divides the sizes of the largest tests under the race
// detector (race_test.go).
const RaceScale = raceScale

// CellIndices returns the indices below m of the sketch cells a key
// falls in.
func CellIndices(k Key, m uint64) []uint64 {
	var out []uint64
	s := newIndexSeq(uint64(keyID(&k)))
	for i := uint64(0); i < m; i = s.next() {
		out = append(out, i)
	}
	return out
}

// SplitCounts returns the tree's Splits of [lo, hi) with about how many
// keys each part holds, as sketch parts are sized.
func SplitCounts(ctx context.Context, t *Tree, lo, hi Key) ([]Key, []uint64, error) {
	return t.splitCounts(ctx, lo, hi)
}

// ReconcileWithoutMatch is Reconcile with a session that never asks for
// MATCH, as against a peer of sync 3.0; it fails if a message of the
// initiator holds a MATCH item all the same.
func ReconcileWithoutMatch(ctx context.Context, local, remote Set, lo, hi Key, p Params) (initiator, responder Diff, st Stats, err error) {
	s, err := NewSession(local, lo, hi, p)
	if err != nil {
		return
	}
	s.WithoutMatch()
	return drive(ctx, s, remote, p, func(frames []*pb.ReconcileFrame) error {
		for _, f := range frames {
			for _, it := range f.Items {
				if it.Mode == pb.Mode_MATCH {
					return fmt.Errorf("a MATCH from a session without them")
				}
			}
		}
		return nil
	})
}

// KeyOfID returns the key with short ID id whose timestamp is low within
// the ID's window and whose hash after the ID's 3 bytes is fill.
func KeyOfID(id, low uint64, fill byte) Key {
	k := Key{TS: id>>idWindowBits<<idWindowBits | low}
	k.Hash[0], k.Hash[1], k.Hash[2] = byte(id>>16), byte(id>>8), byte(id)
	for i := 3; i < HashSize; i++ {
		k.Hash[i] = fill
	}
	return k
}
