package node

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// FuzzDecodeJournal decodes arbitrary bytes as a journal record. A record
// decodes only into ranges with lo <= hi, at most one per 49 bytes, and
// encodes back to the same bytes; anything else is errBadJournal.
func FuzzDecodeJournal(f *testing.F) {
	sc := reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/fuzz/1/journal/proto"}
	var keys []reconcile.Key
	for i := range 4 {
		m := reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: []byte{byte(i)}, Timestamp: int64(1000 + i/2)}
		keys = append(keys, m.Key())
	}
	slices.SortFunc(keys, reconcile.Key.Compare)
	f.Add(encodeJournal([]journalEntry{{id: sc.ID(), lo: keys[0], hi: keys[3]}}))
	f.Add(encodeJournal([]journalEntry{{id: sc.ID(), lo: keys[0], hi: keys[1]}, {id: [8]byte{1}, lo: keys[2], hi: keys[2]}}))
	f.Add(encodeJournal([]journalEntry{{id: sc.ID(), lo: keys[3], hi: keys[0]}}))
	f.Add([]byte{journalFormat})
	f.Add(append(encodeJournal([]journalEntry{{id: sc.ID(), lo: keys[1], hi: keys[1]}}), 0))
	f.Add([]byte{1, 2, 3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := decodeJournal(b)
		if err != nil {
			require.ErrorIs(t, err, errBadJournal)
			require.Nil(t, entries)
			return
		}
		require.LessOrEqual(t, len(entries), (len(b)-1)/journalOne)
		for _, e := range entries {
			require.LessOrEqual(t, e.lo.Compare(e.hi), 0)
		}
		require.Equal(t, b, encodeJournal(entries))
	})
}

// TestRangesMatchModel checks mergeRanges and inRanges against a set of
// small integer keys.
func TestRangesMatchModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	key := func(i int) reconcile.Key { return reconcile.TimeBound(uint64(i)) }
	for range 2000 {
		var rs []keyRange
		in := make([]bool, 64)
		for range r.IntN(6) {
			lo := r.IntN(60)
			hi := lo + 1 + r.IntN(8)
			rs = append(rs, keyRange{key(lo), key(hi)})
			for i := lo; i < hi && i < len(in); i++ {
				in[i] = true
			}
		}
		merged := mergeRanges(rs)
		for i := 1; i < len(merged); i++ {
			require.Positive(t, merged[i].lo.Compare(merged[i-1].hi), "merged ranges are disjoint, apart and ordered")
		}
		for i := range in {
			require.Equal(t, in[i], inRanges(merged, key(i)), "key %d in %v", i, merged)
		}
	}
}
