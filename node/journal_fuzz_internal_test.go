package node

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// FuzzDecodeJournal decodes arbitrary bytes as a journal record. A record
// decodes only into non-empty, strictly ascending key lists, no more keys
// than the record has bytes, and encodes back into a record that decodes
// to the same; anything else is errBadJournal.
func FuzzDecodeJournal(f *testing.F) {
	sc := reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/fuzz/1/journal/proto"}
	var keys []reconcile.Key
	for i := range 5 {
		m := reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: []byte{byte(i)}, Timestamp: int64(1000 + i/2)}
		keys = append(keys, m.Key())
	}
	slices.SortFunc(keys, reconcile.Key.Compare)
	f.Add(encodeJournal([]journalEntry{{id: sc.ID(), keys: keys}}))
	f.Add(encodeJournal([]journalEntry{{id: sc.ID(), keys: keys[:2]}, {id: [8]byte{1}, keys: keys[2:]}}))
	f.Add([]byte{journalFormat})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := decodeJournal(b)
		if err != nil {
			require.ErrorIs(t, err, errBadJournal)
			require.Nil(t, entries)
			return
		}
		n := 0
		for _, e := range entries {
			require.NotEmpty(t, e.keys)
			for i := 1; i < len(e.keys); i++ {
				require.Negative(t, e.keys[i-1].Compare(e.keys[i]))
			}
			n += len(e.keys)
		}
		require.LessOrEqual(t, n, len(b))
		again, err := decodeJournal(encodeJournal(entries))
		require.NoError(t, err)
		require.Equal(t, entries, again)
	})
}
