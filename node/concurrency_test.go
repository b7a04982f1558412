package node_test

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

func TestConcurrentPuts(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA, scopeB})
	r := rand.New(rand.NewPCG(17, 18))
	pools := map[reconcile.Scope][]reconcile.Message{
		scopeA: randMsgs(r, scopeA, 2000, 1e6),
		scopeB: randMsgs(r, scopeB, 1500, 1e6),
	}
	mixed := append(append([]reconcile.Message(nil), pools[scopeA]...), pools[scopeB]...)

	const writers = 8
	var added atomic.Int64
	var coveredMu sync.Mutex
	covered := make([]bool, len(mixed))
	var wg sync.WaitGroup
	for w := range writers {
		seed := uint64(w)
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, 99))
			for range 20 {
				// Random overlapping slices mixing both scopes.
				lo := r.IntN(len(mixed) - 300)
				coveredMu.Lock()
				for i := lo; i < lo+300; i++ {
					covered[i] = true
				}
				coveredMu.Unlock()
				batch := append([]reconcile.Message(nil), mixed[lo:lo+300]...)
				r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				res, err := s.Put(t.Context(), batch...)
				assert.NoError(t, err)
				assert.Equal(t, len(batch), len(res.Added)+res.Duplicates)
				added.Add(int64(len(res.Added)))
			}
		})
	}
	// Readers run alongside: reconciliation reads the trees while
	// messages arrive.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for _, sc := range []reconcile.Scope{scopeA, scopeB} {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := s.Query(t.Context(), node.Query{Scope: sc, Limit: 50})
				assert.NoError(t, err)
				set, _ := s.Set(sc)
				_, err = set.Aggregate(t.Context(), reconcile.Key{}, reconcile.End)
				assert.NoError(t, err)
				s.Stats(sc)
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	// Whatever the interleaving, each message was added exactly once, and
	// each tree holds exactly the messages given to Put.
	var total int64
	for sc := range pools {
		var want []reconcile.Message
		for i, m := range mixed {
			if covered[i] && m.Scope() == sc {
				want = append(want, m)
			}
		}
		st, _ := s.Stats(sc)
		total += int64(st.Count)
		require.Equal(t, uint64(len(want)), st.Count)
		require.Equal(t, fingerprintOf(t, want), st.Root)
		require.Equal(t, sortedKeys(want), treeKeys(t, s, sc))
		tr, _ := s.Tree(sc)
		agg, err := tr.Verify(t.Context())
		require.NoError(t, err)
		require.Equal(t, st.Count, agg.Count)
	}
	require.Equal(t, added.Load(), total)
}
