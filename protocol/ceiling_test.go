package protocol_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// lowLimits shrinks every limit a session knows: a frame of 64 KiB, 256
// hashes, 64 items and 512 cells a message, batches of 64 KiB, messages
// of 1 KiB. A scope of 20,000 messages is then many times what one
// message of either protocol may carry.
func lowLimits(catchUp bool) []protocol.Option {
	p := reconcile.DefaultParams()
	p.FrameSize = 64 << 10
	p.Limits = reconcile.Limits{MaxItems: 64, MaxCells: 512, MaxIDs: 256}
	opts := []protocol.Option{protocol.WithReconcileParams(p), protocol.WithBatchLimits(256, 64<<10),
		protocol.WithMaxMessageSize(1024)}
	if !catchUp {
		opts = append(opts, protocol.WithCatchUp(0, 0))
	}
	return opts
}

// TestNoCeiling: with every limit lowered, a client converges with a
// server whose scope is far larger than a message may carry, from empty
// and from far behind, streaming and reconciling alike; and a server far
// behind a client gets what it lacks. Every Sync call succeeds: no limit
// fails a session, it only takes more of them.
func TestNoCeiling(t *testing.T) {
	const n = 20_000 / raceScale // many batches of 256, under the race detector too
	for _, tc := range []struct {
		name    string
		catchUp bool
		held    func(i int) bool // what the client holds of the server's messages
		extra   int              // messages the client holds that the server lacks
	}{
		{"empty, streamed", true, func(int) bool { return false }, 0},
		{"empty, reconciled", false, func(int) bool { return false }, 0},
		{"far behind, streamed", true, func(i int) bool { return i%20 == 0 }, 0},
		{"far behind, reconciled", false, func(i int) bool { return i%20 == 0 }, 0},
		{"a prefix, reconciled", false, func(i int) bool { return i < n/10 }, 0},
		{"server far behind", false, func(int) bool { return true }, n / 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := newStreamNode(t, []reconcile.Scope{chat}, lowLimits(tc.catchUp)...)
			client := newStreamNode(t, []reconcile.Scope{chat}, lowLimits(tc.catchUp)...)
			connect(t, client.h, server.h)
			msgs := fillScope(t, chat, n, server.node)
			var held []reconcile.Message
			for i := range msgs {
				if tc.held(i) {
					held = append(held, msgs[i])
				}
			}
			for i := range tc.extra {
				held = append(held, msg(chat, t0+int64(n+i)*1e9))
			}
			client.put(t, held...)
			want := len(msgs) + tc.extra
			for round := 0; ; round++ {
				require.Less(t, round, 20, "no convergence")
				rep, err := client.svc.Sync(t.Context(), server.h.ID(), chat)
				require.NoError(t, err)
				require.NoError(t, rep.Err())
				if client.store.root(chat) == server.store.root(chat) {
					break
				}
			}
			require.Len(t, client.store.hashes(chat), want)
			require.Len(t, server.store.hashes(chat), want)
		})
	}
}
