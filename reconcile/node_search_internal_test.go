package reconcile

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNodeSearchMatchesALinearScan checks search against the first
// entry at or after (after, when strict) the key, on nodes whose keys
// share timestamps in runs, as an author may make them, and on keys
// that fall inside, between and around those runs.
func TestNodeSearchMatchesALinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for range 300 {
		var keys []Key
		ts := uint64(r.IntN(5))
		for len(keys) < 1+r.IntN(200) {
			if r.IntN(3) == 0 {
				ts += uint64(1 + r.IntN(3))
			}
			var k Key
			k.TS = ts
			k.Hash[0], k.Hash[1] = byte(r.IntN(256)), byte(len(keys))
			keys = append(keys, k)
		}
		set := NewSliceSet(keys)
		entries := make([]entry, len(set))
		for i, k := range set {
			entries[i] = leafEntry(k)
		}
		n := newNode(0, entries)
		for range 50 {
			k := set[r.IntN(len(set))]
			switch r.IntN(3) {
			case 1:
				k.Hash[0]++
			case 2:
				k.TS += uint64(r.IntN(3)) - 1
			}
			for _, strict := range []bool{false, true} {
				want := len(set)
				for i, e := range set {
					if c := e.Compare(k); c > 0 || (c == 0 && !strict) {
						want = i
						break
					}
				}
				require.Equal(t, want, n.search(k, strict), "key %v strict %v", k, strict)
			}
		}
	}
}
