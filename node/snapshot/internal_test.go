package snapshot

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// TestEntrySize holds the size helpers to what they measure, and checks
// that a message's entry is never longer than its pb.Message encoding:
// the reason a batch limit at least the message limit always fits one.
func TestEntrySize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sc := reconcile.Scope{PubsubTopic: "p", ContentTopic: "c"}
	for i := range 1000 {
		m := reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Timestamp: 1 + rng.Int64N(reconcile.MaxTimestamp)}
		if i%3 > 0 {
			m.Payload = make([]byte, rng.IntN(300))
		}
		if i%4 == 0 {
			m.Meta = make([]byte, rng.IntN(64))
		}
		require.Equal(t, m.ToPB().Size(), messageSize(&m))
		delta := uint64(m.Timestamp) >> rng.IntN(64) // never above the timestamp
		require.Len(t, appendMessage(nil, delta, &m), entrySize(delta, &m))
		require.LessOrEqual(t, entrySize(delta, &m), messageSize(&m))
	}
	m := reconcile.Message{PubsubTopic: "p", ContentTopic: "c", Payload: make([]byte, 256), Timestamp: 1}
	require.Zero(t, testing.AllocsPerRun(100, func() { messageSize(&m) }))
}
