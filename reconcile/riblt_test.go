package reconcile

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
)

func testHashes(r *rand.Rand, n int) []Hash {
	out := make([]Hash, n)
	for i := range out {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		out[i] = sha256.Sum256(b[:])
	}
	return out
}

func cellsOf(hs []Hash, first, n uint64) []cell {
	c := make([]cell, n)
	for i := range hs {
		addRange(c, first, shortID(&hs[i]), 1)
	}
	return c
}

// shortID returns a random element: a hash's first 8 bytes.
func shortID(h *Hash) ShortID { return ShortID(binary.LittleEndian.Uint64(h[:8])) }

func shortIDs(hs []Hash) []ShortID {
	out := make([]ShortID, 0, len(hs))
	for i := range hs {
		out = append(out, shortID(&hs[i]))
	}
	slices.Sort(out)
	return out
}

// cellsNeeded grows a sketch in steps until the difference decodes and
// returns how many cells that took.
func cellsNeeded(t testing.TB, remote, local []Hash, step uint64) uint64 {
	var p peeler
	var have uint64
	for {
		r := cellsOf(remote, have, step)
		l := cellsOf(local, have, step)
		// Cells travel in their wire form.
		rw, err := decodeCells(encodeCells(nil, r))
		require.NoError(t, err)
		lw, err := decodeCells(encodeCells(nil, l))
		require.NoError(t, err)
		p.extend(rw, lw)
		have += step
		if p.peel() {
			return have
		}
		if have > 100000 {
			t.Fatalf("no decode after %d cells", have)
		}
	}
}

func TestSketchDecodesBothDirections(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, d := range []int{1, 2, 7, 50, 300} {
		common := testHashes(r, 2000)
		onlyA := testHashes(r, d)
		onlyB := testHashes(r, d/2)
		a := append(slices.Clone(common), onlyA...)
		b := append(slices.Clone(common), onlyB...)
		var p peeler
		n := uint64(4*d + 20)
		p.extend(cellsOf(a, 0, n), cellsOf(b, 0, n))
		require.True(t, p.peel(), "d=%d", d)
		slices.Sort(p.remote)
		slices.Sort(p.local)
		require.Equal(t, shortIDs(onlyA), append([]ShortID{}, p.remote...))
		require.Equal(t, shortIDs(onlyB), append([]ShortID{}, p.local...))
	}
}

func TestIndexSequenceDensity(t *testing.T) {
	// Index i must be hit with probability 2/(i+2).
	r := rand.New(rand.NewPCG(2, 2))
	hs := testHashes(r, 200000)
	hits := make([]int, 64)
	for i := range hs {
		s := newIndexSeq(uint64(shortID(&hs[i])))
		for j := uint64(0); j < 64; j = s.next() {
			hits[j]++
		}
	}
	for _, i := range []int{0, 1, 2, 5, 10, 30, 63} {
		want := 2.0 / float64(i+2) * float64(len(hs))
		require.InDelta(t, want, float64(hits[i]), want*0.05+50, "index %d", i)
	}
}

// TestSketchOverhead checks the sketch sizing rule against the decoder:
// sketchLen must cover at least 98% of trials at every difference size,
// and large differences must average under 1.45 cells per element.
func TestSketchOverhead(t *testing.T) {
	if testing.Short() {
		t.Skip("statistics")
	}
	r := rand.New(rand.NewPCG(3, 3))
	margin := DefaultParams().SketchMargin
	for _, tc := range []struct{ d, trials int }{{1, 200}, {3, 200}, {10, 200}, {30, 200}, {100, 100}, {1000, 12}} {
		var needs []int
		over := 0
		for range tc.trials {
			common := testHashes(r, 100)
			a := append(slices.Clone(common), testHashes(r, tc.d)...)
			n := int(cellsNeeded(t, a, common, 1))
			needs = append(needs, n)
			if uint64(n) > sketchLen(uint64(tc.d), margin) {
				over++
			}
		}
		sum := 0
		for _, n := range needs {
			sum += n
		}
		mean := float64(sum) / float64(len(needs)) / float64(tc.d)
		t.Logf("d=%d: %.2f cells per element on average, %d of %d beyond sketchLen", tc.d, mean, over, tc.trials)
		require.LessOrEqual(t, over, tc.trials/50+1, "d=%d", tc.d)
		if tc.d >= 1000 {
			require.Less(t, mean, 1.45)
		}
	}
}

// TestRemainingEstimate checks the difference estimate a failed peel
// gives, for differences on one side and on both, against the truth.
func TestRemainingEstimate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, tc := range []struct{ a, b, m int }{{40, 30, 48}, {100, 100, 28}, {500, 480, 48}, {2000, 2000, 48}, {300, 0, 100}} {
		var ests []float64
		for range 21 {
			common := testHashes(r, 200)
			a := append(slices.Clone(common), testHashes(r, tc.a)...)
			b := append(slices.Clone(common), testHashes(r, tc.b)...)
			var p peeler
			p.extend(cellsOf(a, 0, uint64(tc.m)), cellsOf(b, 0, uint64(tc.m)))
			p.peel()
			ests = append(ests, float64(len(p.remote)+len(p.local))+p.remaining(int64(tc.a-tc.b)))
		}
		slices.Sort(ests)
		d := float64(tc.a + tc.b)
		require.InDelta(t, d, ests[10], d*0.25, "median estimate for d=%v", d)
		require.Greater(t, ests[2], d/2)
		require.Less(t, ests[18], d*2)
	}
}

// TestSpareCountsTightenTheEstimate checks what the counts a guessed
// sketch carries after its cells are for: a two-way difference of 1,000
// that the 30 cells of such a sketch cannot decode is estimated within
// 15 % (RMS) with 64 spare counts, against some 27 % from the cells alone.
func TestSpareCountsTightenTheEstimate(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	const trials, half, sent = 60, 500, 30
	var alone, spared float64
	for range trials {
		common := testHashes(r, 100)
		a := append(slices.Clone(common), testHashes(r, half)...)
		b := append(slices.Clone(common), testHashes(r, half)...)
		remote := cellsOf(a, 0, sent+estimateCounts)
		local := cellsOf(b, 0, sent+estimateCounts)
		counts := make([]int8, estimateCounts)
		for i := range counts {
			counts[i] = int8(remote[sent+i].count) // as they travel
		}
		var p peeler
		p.extend(remote[:sent], local[:sent])
		require.False(t, p.peel())
		d := float64(2 * half)
		e := float64(len(p.remote)+len(p.local)) + p.remaining(0)
		alone += (e - d) * (e - d) / (d * d)
		p.setSpare(sent, counts, local[sent:])
		e = float64(len(p.remote)+len(p.local)) + p.remaining(0)
		spared += (e - d) * (e - d) / (d * d)
	}
	alone, spared = math.Sqrt(alone/trials), math.Sqrt(spared/trials)
	t.Logf("relative RMS error: %.3f from the cells alone, %.3f with %d spare counts", alone, spared, estimateCounts)
	require.Less(t, spared, 0.18)
	require.Less(t, spared, 0.75*alone)
}

// TestSpareCountsOnTheWire checks that counts travel with a SKETCH item
// only, bounded, and count against the receiver's cell limit.
func TestSpareCountsOnTheWire(t *testing.T) {
	lim := Limits{MaxItems: 4, MaxCells: 100, MaxIDs: 10}
	it := rangeItem{lo: Key{TS: 1}, hi: End, mode: pb.Mode_SKETCH, count: 9,
		cells: []cell{{id: 7, check: checksum(7), count: 1}}, counts: []int8{-3, 0, 127, -128}}
	frames := encode(&message{items: []rangeItem{it}}, 1<<16)
	m, err := decode(frames, &lim)
	require.NoError(t, err)
	require.Equal(t, it.counts, m.items[0].counts)

	tight := Limits{MaxItems: 4, MaxCells: 4, MaxIDs: 10}
	_, err = decode(frames, &tight)
	require.ErrorIs(t, err, ErrTooLarge, "counts count as cells")

	w := itemWire(&it)
	w.Mode = pb.Mode_FINGERPRINT
	w.Cells = nil
	_, err = itemFromWire(w, it.lo, it.hi, 10, 10)
	require.ErrorIs(t, err, ErrBadFrame, "counts in a FINGERPRINT item")

	w = itemWire(&it)
	w.Counts = make([]byte, maxEstimateCounts+1)
	_, err = itemFromWire(w, it.lo, it.hi, 10, 10)
	require.ErrorIs(t, err, ErrBadFrame, "more counts than the memos hold")
}
