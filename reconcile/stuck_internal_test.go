package reconcile

import (
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// Two short IDs that fall in the same cells, the first 300 at least.
const pairRemote, pairLocal ShortID = 0x4110f99808e3, 0x1323ed66a0bf2

// peeled returns a peeler over n cells of a remote set and a local set
// that share common and differ by the given elements, peeled.
func peeled(n int, common, remote, local []ShortID) *peeler {
	rc, lc := make([]cell, n), make([]cell, n)
	for _, id := range append(slices.Clone(common), remote...) {
		addRange(rc, 0, id, 1)
	}
	for _, id := range append(slices.Clone(common), local...) {
		addRange(lc, 0, id, 1)
	}
	var p peeler
	p.extend(rc, lc)
	p.peel()
	return &p
}

// offered returns what a holder of mine offers assist: its elements not
// decoded yet that would free others.
func offered(p *peeler, mine []ShortID) []ShortID {
	var out []ShortID
	for _, id := range mine {
		if _, done := p.seen[id]; !done && p.frees(id) {
			out = append(out, id)
		}
	}
	return out
}

type peelerState struct {
	diff          []cell
	remote, local []ShortID
	seen          map[ShortID]struct{}
}

func stateOf(p *peeler) peelerState {
	return peelerState{slices.Clone(p.diff), append([]ShortID(nil), p.remote...), append([]ShortID(nil), p.local...), maps.Clone(p.seen)}
}

func randomIDs(r *rand.Rand, n int) []ShortID {
	out := make([]ShortID, n)
	for i := range out {
		out[i] = ShortID(r.Uint64())
	}
	return out
}

func TestAssistFreesALonePair(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	common := randomIDs(r, 500)
	others := randomIDs(r, 2)
	p := peeled(100, common, []ShortID{pairRemote, others[0]}, []ShortID{pairLocal, others[1]})
	require.ElementsMatch(t, others[:1], p.remote, "the other elements peel")
	require.ElementsMatch(t, others[1:], p.local)
	require.Positive(t, p.residue())

	mine := append(slices.Clone(common), pairLocal, others[1])
	found := offered(p, mine)
	require.Equal(t, []ShortID{pairLocal}, found, "of ours, the pair's alone frees another")
	require.True(t, p.assist(found, nil))
	require.ElementsMatch(t, []ShortID{others[0], pairRemote}, p.remote)
	require.ElementsMatch(t, []ShortID{others[1], pairLocal}, p.local)
}

func TestAssistLeavesThePeelerAsItWasWhenItCannot(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	common := randomIDs(r, 50)
	p := peeled(100, common, []ShortID{pairRemote}, []ShortID{pairLocal})
	before := stateOf(p)
	// An element both hold is not in the difference: taken out, it
	// leaves cells that do not empty. (The remote element of the pair
	// would free the local one, with the sides swapped, as the cells
	// cannot tell them apart; a caller offers only its own.)
	for _, wrong := range [][]ShortID{common[:1], {pairLocal, common[3]}} {
		require.False(t, p.assist(wrong, nil), "%x", wrong)
		require.Equal(t, before, stateOf(p))
	}
}

// TestAssistDecodesExactlyOrNothing is a model test over random sets and
// sketch lengths: whenever a peel fails and the local side's offer
// frees it, the peeler holds exactly the two sides' differences; when
// the offer does not, it is unchanged. Some sketches must be freed.
func TestAssistDecodesExactlyOrNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var stuck, freed int
	for range 20_000 {
		common := randomIDs(r, 200)
		remote := randomIDs(r, 1+r.IntN(10))
		local := randomIDs(r, 1+r.IntN(10))
		p := peeled(8+r.IntN(40), common, remote, local)
		if n := p.residue(); n == 0 || 2*n > p.cells() {
			continue
		}
		stuck++
		found := offered(p, append(slices.Clone(common), local...))
		before := stateOf(p)
		if !p.assist(found, nil) {
			require.Equal(t, before, stateOf(p))
			continue
		}
		freed++
		require.ElementsMatch(t, remote, p.remote)
		require.ElementsMatch(t, local, p.local)
	}
	t.Logf("%d stuck with few cells left, %d freed", stuck, freed)
	require.Positive(t, freed)
}

// countingSet counts the keys its Iterate hands out.
type countingSet struct {
	SliceSet
	read int
}

func (c *countingSet) Iterate(ctx context.Context, lo, hi Key, fn func(Key) error) error {
	return c.SliceSet.Iterate(ctx, lo, hi, func(k Key) error {
		c.read++
		return fn(k)
	})
}

// TestStuckSketchesReadAtMostMaxStuckScan: a responder whose sketches
// all look stuck, with nothing of ours to free them, makes the session
// read at most maxStuckScan of its keys over all its ranges, and decode
// nothing.
func TestStuckSketchesReadAtMostMaxStuckScan(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	keys := make([]Key, 3*maxStuckScan)
	for i := range keys {
		keys[i].TS = r.Uint64N(1 << 50)
		keys[i].Hash[0], keys[i].Hash[5] = byte(i), byte(i>>8)
	}
	set := &countingSet{SliceSet: NewSliceSet(keys)}
	s, err := NewSession(set, Key{}, End, DefaultParams())
	require.NoError(t, err)
	ctx := t.Context()
	quarter := len(set.SliceSet) / 4
	for i := range 4 {
		lo, hi := set.SliceSet[i*quarter], End
		if i < 3 {
			hi = set.SliceSet[(i+1)*quarter]
		}
		mine, err := set.Aggregate(ctx, lo, hi)
		require.NoError(t, err)
		st := &sketchState{lo: lo, hi: hi, mine: mine}
		// A forged pair, of neither side: every cell it fills the same,
		// count zero.
		st.peel.diff = make([]cell, 40)
		addRange(st.peel.diff, 0, pairRemote, 1)
		addRange(st.peel.diff, 0, pairLocal, -1)
		ok, err := s.freeStuck(ctx, st)
		require.NoError(t, err)
		require.False(t, ok)
	}
	require.Positive(t, set.read)
	require.LessOrEqual(t, set.read, maxStuckScan)
}
