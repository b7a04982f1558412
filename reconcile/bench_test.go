package reconcile_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// BenchmarkReconcile runs whole sessions between two 100,000-key trees
// and reports the wire bytes and round trips besides the time.
func BenchmarkReconcile(b *testing.B) {
	r := rand.New(rand.NewPCG(31, 32))
	const n = 100_000
	all := pool(r, n, span)
	full := newTree(b, newMemStore())
	_, _, err := full.Apply(b.Context(), all, nil)
	require.NoError(b, err)
	for _, tc := range []struct {
		name string
		miss func() []reconcile.Key
	}{
		{"in-sync", func() []reconcile.Key { return nil }},
		{"recent-1000", func() []reconcile.Key { return all[n-1000:] }},
		{"scattered-1000", func() []reconcile.Key {
			var out []reconcile.Key
			for _, i := range r.Perm(n)[:1000] {
				out = append(out, all[i])
			}
			return out
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			behind := newTree(b, newMemStore())
			_, _, err := behind.Apply(b.Context(), all, nil)
			require.NoError(b, err)
			_, _, err = behind.Apply(b.Context(), nil, tc.miss())
			require.NoError(b, err)
			var st reconcile.Stats
			b.ReportAllocs()
			for b.Loop() {
				_, _, st, err = reconcile.Reconcile(b.Context(), behind, full, reconcile.Key{}, reconcile.End, reconcile.DefaultParams())
				require.NoError(b, err)
			}
			b.ReportMetric(float64(st.InitiatorBytes+st.ResponderBytes), "wire-bytes/op")
			b.ReportMetric(float64(st.RoundTrips), "round-trips/op")
		})
	}
}

// BenchmarkTreeApply inserts batches of 1,000 keys in time order, the way
// messages arrive, into an in-memory datastore.
func BenchmarkTreeApply(b *testing.B) {
	r := rand.New(rand.NewPCG(33, 34))
	tr := newTree(b, newMemStore())
	var ts uint64 = 1
	b.ReportAllocs()
	for b.Loop() {
		batch := make([]reconcile.Key, 1000)
		for i := range batch {
			ts += 1 + r.Uint64N(1000)
			batch[i] = randKey(r, 1)
			batch[i].TS = ts
		}
		_, _, err := tr.Apply(b.Context(), batch, nil)
		require.NoError(b, err)
	}
	b.ReportMetric(1000, "keys/op")
}
