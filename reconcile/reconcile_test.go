package reconcile_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// scenario builds two sets from one common pool.
type scenario struct {
	name string
	make func(r *rand.Rand) (a, b []reconcile.Key)
}

func pool(r *rand.Rand, n int, span uint64) []reconcile.Key {
	out := make([]reconcile.Key, n)
	for i := range out {
		out[i] = randKey(r, span)
	}
	return model(out).sorted()
}

// drop returns keys without the indices picked.
func dropIdx(keys []reconcile.Key, pick func(i int) bool) []reconcile.Key {
	var out []reconcile.Key
	for i, k := range keys {
		if !pick(i) {
			out = append(out, k)
		}
	}
	return out
}

// twoWay takes a share rate of the pool's keys out of one side or the
// other, at random.
func twoWay(r *rand.Rand, p []reconcile.Key, rate float64) (a, b []reconcile.Key) {
	side := make([]int, len(p))
	for i := range side {
		if r.Float64() < rate {
			side[i] = 1 + r.IntN(2)
		}
	}
	return dropIdx(p, func(i int) bool { return side[i] == 1 }), dropIdx(p, func(i int) bool { return side[i] == 2 })
}

const span = 1 << 40

var scenarios = []scenario{
	{"identical", func(r *rand.Rand) ([]reconcile.Key, []reconcile.Key) {
		p := pool(r, 500+r.IntN(3000), span)
		return p, p
	}},
	{"scattered-one-way", func(r *rand.Rand) ([]reconcile.Key, []reconcile.Key) {
		p := pool(r, 1000+r.IntN(4000), span)
		rate := []float64{0.001, 0.01, 0.1}[r.IntN(3)]
		return p, dropIdx(p, func(int) bool { return r.Float64() < rate })
	}},
	{"scattered-two-way", func(r *rand.Rand) ([]reconcile.Key, []reconcile.Key) {
		return twoWay(r, pool(r, 1000+r.IntN(4000), span), []float64{0.002, 0.02, 0.2}[r.IntN(3)])
	}},
	{"recent", func(r *rand.Rand) ([]reconcile.Key, []reconcile.Key) {
		p := pool(r, 1000+r.IntN(4000), span)
		d := r.IntN(len(p) / 2)
		return p, p[:len(p)-d]
	}},
	{"recent-both", func(r *rand.Rand) ([]reconcile.Key, []reconcile.Key) {
		p := pool(r, 1000+r.IntN(4000), span)
		cut := len(p) - r.IntN(len(p)/3)
		return dropIdx(p, func(i int) bool { return i >= cut && i%2 == 0 }),
			dropIdx(p, func(i int) bool { return i >= cut && i%3 == 0 })
	}},
	{"gap", func(r *rand.Rand) ([]reconcile.Key, []reconcile.Key) {
		p := pool(r, 1000+r.IntN(4000), span)
		i := r.IntN(len(p))
		j := min(len(p), i+r.IntN(800))
		return p, append(slices.Clone(p[:i]), p[j:]...)
	}},
	{"one-empty", func(r *rand.Rand) ([]reconcile.Key, []reconcile.Key) {
		p := pool(r, r.IntN(3000), span)
		if r.IntN(2) == 0 {
			return p, nil
		}
		return nil, p
	}},
	{"disjoint", func(r *rand.Rand) ([]reconcile.Key, []reconcile.Key) {
		return pool(r, r.IntN(2000), span), pool(r, r.IntN(2000), span)
	}},
	{"large-scattered", func(r *rand.Rand) ([]reconcile.Key, []reconcile.Key) {
		// Large enough for sketches in parts and for cells from memos.
		p := pool(r, 20_000+r.IntN(20_000), span)
		rate := []float64{0.002, 0.01, 0.05}[r.IntN(3)]
		return p, dropIdx(p, func(int) bool { return r.Float64() < rate })
	}},
	{"large-two-way", func(r *rand.Rand) ([]reconcile.Key, []reconcile.Key) {
		return twoWay(r, pool(r, 20_000+r.IntN(20_000), span), []float64{0.002, 0.01, 0.05}[r.IntN(3)])
	}},
	{"same-timestamps", func(r *rand.Rand) ([]reconcile.Key, []reconcile.Key) {
		// Few distinct timestamps: bounds must cut between hashes.
		p := pool(r, 2000, 7)
		return dropIdx(p, func(int) bool { return r.IntN(20) == 0 }), dropIdx(p, func(int) bool { return r.IntN(20) == 0 })
	}},
}

// minus returns a's keys in [lo, hi) that b lacks, sorted.
func minus(a, b []reconcile.Key, lo, hi reconcile.Key) []reconcile.Key {
	in := make(map[reconcile.Key]bool, len(b))
	for _, k := range b {
		in[k] = true
	}
	out := []reconcile.Key{}
	for _, k := range a {
		if !in[k] && !k.Less(lo) && k.Less(hi) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(x, y reconcile.Key) int { return x.Compare(y) })
	return out
}

func orEmpty(k []reconcile.Key) []reconcile.Key {
	if k == nil {
		return []reconcile.Key{}
	}
	return k
}

// window picks the whole key space or a random time window.
func window(r *rand.Rand, keys []reconcile.Key) (reconcile.Key, reconcile.Key) {
	if r.IntN(3) == 0 || len(keys) == 0 {
		return reconcile.Key{}, reconcile.End
	}
	a, b := keys[r.IntN(len(keys))].TS, keys[r.IntN(len(keys))].TS
	if a > b {
		a, b = b, a
	}
	return reconcile.TimeBound(a), reconcile.TimeBound(b + 1)
}

// TestDiffIsSetDifference is the property test of reconciliation: for
// random sets, random differences and random windows, both sides learn
// exactly the true set difference in both directions, over trees in a
// datastore and over the sorted-slice model, with default and with
// cramped parameters.
func TestDiffIsSetDifference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	cramped := reconcile.DefaultParams()
	cramped.FrameSize = 64 << 10
	cramped.KeyListMax = 4
	cramped.SketchMargin = 2
	cramped.MaxMessages = 64
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			most := 0
			defer func() { t.Logf("at most %d messages", most) }()
			for trial := range 12 {
				a, b := sc.make(r)
				lo, hi := window(r, append(slices.Clone(a), b...))
				p := reconcile.DefaultParams()
				if trial%3 == 2 {
					p = cramped
				}
				var sa, sb reconcile.Set = reconcile.NewSliceSet(a), reconcile.NewSliceSet(b)
				if trial%2 == 0 {
					ta, tb := newTree(t, newMemStore()), newTree(t, newMemStore())
					_, _, err := ta.Apply(t.Context(), a, nil)
					require.NoError(t, err)
					_, _, err = tb.Apply(t.Context(), b, nil)
					require.NoError(t, err)
					sa, sb = ta, tb
				}
				ini, res, st, err := reconcile.Reconcile(t.Context(), sa, sb, lo, hi, p)
				require.NoError(t, err, "trial %d", trial)
				most = max(most, st.Messages)
				need, have := minus(b, a, lo, hi), minus(a, b, lo, hi)
				require.Equal(t, need, orEmpty(ini.Need), "trial %d: initiator need", trial)
				require.Equal(t, have, orEmpty(ini.Have), "trial %d: initiator have", trial)
				require.Equal(t, have, orEmpty(res.Need), "trial %d: responder need", trial)
				require.Equal(t, need, orEmpty(res.Have), "trial %d: responder have", trial)
				if len(need)+len(have) == 0 {
					require.Equal(t, 2, st.Messages, "equal sets take one round trip")
				}
			}
		})
	}
}
