package protocol

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// fuzzSyncHeld are the messages the client of FuzzSyncClient holds: some
// of those the seed server serves, so that the session has work both
// ways. Made once: hashing them is most of an execution's work.
var fuzzSyncHeld = sync.OnceValue(func() []reconcile.Message { return fuzzServed()[150:250] })

// FuzzSyncClient replays arbitrary bytes as a server's side of one sync
// session (its turns) to the client: Sync of one scope, which the client
// reconciles (it holds messages, so it does not stream). Whatever the
// server sends:
//
//   - nothing panics, and the call returns;
//   - the client stores nothing: messages come only on fetch streams,
//     which this server never answers;
//   - what the session learned is bounded by what was sent: every key
//     the client needs was named in the input (32 bytes of hash at
//     least), and it offers at most what it holds;
//   - the heap allocated is bounded by the input's frames, each read
//     within the frame limit, not by what a frame claims.
func FuzzSyncClient(f *testing.F) {
	for _, seed := range fuzzSyncSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		svc, _, store := fuzzSyncClient(t, data)
		defer svc.Close()
		var rep *Report
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		alloc := fuzzAllocated(func() { rep, _ = svc.Sync(ctx, fuzzPeer, fuzzScope) })
		frame := uint64(reconcile.DefaultParams().FrameSize + 1024)
		nframes := uint64(len(fuzzSplitFrames(data)))
		require.LessOrEqual(t, alloc, 8<<20+nframes*4*frame+64*uint64(len(data)),
			"allocated %d bytes for %d bytes in %d frames", alloc, len(data), nframes)
		require.Empty(t, store.puts, "a sync session stored messages")
		require.Len(t, rep.Scopes, 1)
		r := rep.Scopes[0]
		require.LessOrEqual(t, r.Need, len(data)/32, "needs %d keys from %d bytes", r.Need, len(data))
		require.LessOrEqual(t, r.Have, len(fuzzSyncHeld()))
		require.Zero(t, r.Received)
	})
}

// fuzzSyncClient returns a sync client holding fuzzSyncHeld, over a host
// whose first stream replays in and which has no other.
func fuzzSyncClient(t testing.TB, in []byte) (*Service, *scriptedStream, *fuzzStore) {
	st := newScriptedStream(in)
	store := newFuzzStore(map[reconcile.Scope][]reconcile.Message{fuzzScope: fuzzSyncHeld()})
	svc, err := New(newScriptedHost(st), store, WithLogger(fuzzDiscardLogger), WithTimeouts(10*time.Second, time.Second))
	require.NoError(t, err)
	return svc, st, store
}

// fuzzSyncSeeds are FuzzSyncClient's seeds: the first turn an honest
// server holding fuzzServed sends the client, that turn cut short, and
// no turn at all.
func fuzzSyncSeeds(t testing.TB) [][]byte {
	client, st, _ := fuzzSyncClient(t, nil)
	_, err := client.Sync(context.Background(), fuzzPeer, fuzzScope)
	require.Error(t, err)
	client.Close()
	request := st.written()

	store := newFuzzStore(map[reconcile.Scope][]reconcile.Message{fuzzScope: fuzzServed()})
	server, err := New(newScriptedHost(), store, WithLogger(fuzzDiscardLogger))
	require.NoError(t, err)
	defer server.Close()
	ss := newScriptedStream(request)
	// The client's request alone, then the end of the stream: the server
	// answers the first turn and ends.
	_, _, err = server.serveSync(context.Background(), fuzzPeer, newConn(ss, 1<<20, time.Minute, time.Time{}), true)
	require.NoError(t, err)
	turn := ss.written()
	require.NotEmpty(t, turn)
	return [][]byte{turn, turn[:len(turn)/2], nil}
}
