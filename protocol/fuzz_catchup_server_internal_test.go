package protocol

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio/protoio"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/reconcile"
)

// fuzzServerBatch is the server's batch limit in FuzzServeCatchUp: twice
// the smallest a client may ask for, so that a request's MaxBytes counts.
const fuzzServerBatch = 128 << 10

// fuzzServer returns a catch-up server keeping fuzzScope with the seed
// messages and fuzzHidden, which it refuses to serve.
func fuzzServer(t testing.TB) (*Service, *fuzzStore) {
	store := newFuzzStore(map[reconcile.Scope][]reconcile.Message{
		fuzzScope:  fuzzServed(),
		fuzzHidden: fuzzMessages(fuzzHidden, 1000, 10, 20),
	})
	svc, err := New(newScriptedHost(), store,
		WithBatchLimits(1024, fuzzServerBatch),
		WithMaxMessageSize(fuzzClientMaxSize),
		WithLogger(fuzzDiscardLogger),
		WithAuthorizer(func(_ peer.ID, sc reconcile.Scope) bool { return sc != fuzzHidden }))
	require.NoError(t, err)
	return svc, store
}

// FuzzServeCatchUp replays arbitrary bytes as a client's side of a
// catch-up stream to the server, serveCatchUp with catchUpRange, over a
// scope of 400 messages:
//
//   - catchUpRange accepts exactly the well-formed requests (an 8-byte
//     scope, bounds of 0 or 40 bytes, after < until), returning their
//     bounds, and then answers a *RemoteError for a scope it does not
//     keep or may not serve; it rejects every other request with
//     ErrBadRequest;
//   - a request that does not decode fails the stream with a sentinel or
//     the stream's end, and a malformed one with ErrBadRequest, before
//     anything is written; a refused one is answered by a header with its
//     code, and nothing else;
//   - an accepted request is answered by a header whose count is what the
//     range holds and, for a summary, whose splits cut the range in
//     order, at most maxSplits, into parts that add up to the count;
//   - then, unless a summary was asked for, by batches that hold exactly
//     the range's messages in key order, each within the byte limit the
//     client asked for (or a single message), compressed only if the
//     client accepts it, the last one done.
func FuzzServeCatchUp(f *testing.F) {
	svc, store := fuzzServer(f)
	f.Cleanup(func() { svc.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		st := newScriptedStream(data)
		err := svc.serveCatchUp(context.Background(), fuzzPeer, newConn(st, 1<<10, time.Minute, time.Time{}))
		out := st.written()

		var req pb.CatchUpRequest
		if rerr := protoio.NewDelimitedReader(bytes.NewReader(data), 1<<10).ReadMsg(&req); rerr != nil {
			require.Error(t, err)
			require.True(t, fuzzOneOf(err, ErrBadRequest, ErrTooLarge, io.EOF, io.ErrUnexpectedEOF), "not a sentinel: %v", err)
			require.Empty(t, out)
			return
		}

		sc, after, until, rangeErr := svc.catchUpRange(fuzzPeer, &req)
		wantAfter, okAfter := fuzzBound(req.After, reconcile.Key{})
		wantUntil, okUntil := fuzzBound(req.Until, reconcile.End)
		wellFormed := len(req.Scope) == 8 && okAfter && okUntil && wantAfter.Less(wantUntil)
		var re *RemoteError
		switch {
		case !wellFormed:
			require.ErrorIs(t, rangeErr, ErrBadRequest)
			require.False(t, errors.As(rangeErr, &re))
			require.ErrorIs(t, err, ErrBadRequest)
			require.Empty(t, out)
			return
		case errors.As(rangeErr, &re):
			kept, ok := store.ScopeByID([8]byte(req.Scope))
			switch {
			case !ok:
				require.Equal(t, pb.Code_UNSUPPORTED_SCOPE, re.Code)
			case kept == fuzzHidden:
				require.Equal(t, pb.Code_REFUSED, re.Code)
			default:
				t.Fatalf("%v refused: %v", kept, re)
			}
			require.NoError(t, err)
			var h pb.CatchUpHeader
			r := protoio.NewDelimitedReader(bytes.NewReader(out), 1<<20)
			require.NoError(t, r.ReadMsg(&h))
			require.NotNil(t, h.Error)
			require.Equal(t, re.Code, h.Error.Code)
			require.ErrorIs(t, r.ReadMsg(&h), io.EOF, "a refused request is answered by its header alone")
			return
		}
		require.NoError(t, rangeErr)
		require.Equal(t, fuzzScope, sc)
		require.Equal(t, wantAfter, after)
		require.Equal(t, wantUntil, until)
		require.NoError(t, err)

		want := store.within(sc, after, until)
		r := protoio.NewDelimitedReader(bytes.NewReader(out), 4<<20)
		var h pb.CatchUpHeader
		require.NoError(t, r.ReadMsg(&h))
		require.Nil(t, h.Error)
		require.Len(t, h.Root, 16)
		require.Equal(t, uint64(len(want)), h.Count, "the header's count of (%v, %v)", after, until)
		if req.Summary {
			fuzzCheckSummary(t, &h, after, until)
			require.ErrorIs(t, r.ReadMsg(&h), io.EOF, "a summary is the header alone")
			return
		}
		limit := fuzzServerBatch
		if req.MaxBytes > 0 && int(req.MaxBytes) < limit {
			limit = max(int(req.MaxBytes), 64<<10)
		}
		var got []reconcile.Key
		for done := false; !done; {
			var b pb.CatchUpBatch
			require.NoError(t, r.ReadMsg(&b), "a stream that ends before its last batch")
			require.Nil(t, b.Error)
			done = b.Done
			require.True(t, b.Zstd == nil || b.Batch == nil, "a batch both plain and compressed")
			require.True(t, b.Zstd == nil || req.AcceptZstd, "a compressed batch the client did not accept")
			msgs, uerr := svc.unpack(b.Batch, b.Zstd)
			require.NoError(t, uerr)
			require.True(t, len(msgs) > 0 || done, "an empty batch before the last")
			size := 0
			for _, pm := range msgs {
				m := reconcile.MessageFromPB(pm)
				if req.AcceptBare {
					// A client that takes bare messages gets them
					// without topics: they are the scope's.
					require.Empty(t, m.PubsubTopic)
					require.Empty(t, m.ContentTopic)
					m.PubsubTopic, m.ContentTopic = sc.PubsubTopic, sc.ContentTopic
				}
				require.Equal(t, sc, m.Scope())
				got = append(got, m.Key())
				size += pm.Size() + 8
			}
			require.True(t, len(msgs) <= 1 || size <= limit, "a batch of %d bytes, limit %d", size, limit)
		}
		require.ErrorIs(t, r.ReadMsg(&h), io.EOF, "frames after the last batch")
		require.Equal(t, want, got)
	})
}

// fuzzBound decodes a request's bound: empty is def.
func fuzzBound(b []byte, def reconcile.Key) (reconcile.Key, bool) {
	if len(b) == 0 {
		return def, true
	}
	k, err := reconcile.KeyFromBytes(b)
	return k, err == nil
}

// fuzzCheckSummary checks a summary header of (after, until): what
// cutRanges relies on.
func fuzzCheckSummary(t *testing.T, h *pb.CatchUpHeader, after, until reconcile.Key) {
	require.Zero(t, len(h.Splits)%reconcile.KeySize)
	n := len(h.Splits) / reconcile.KeySize
	require.LessOrEqual(t, n, maxSplits)
	require.Len(t, h.PartCounts, n+1)
	prev := after
	for b := h.Splits; len(b) > 0; b = b[reconcile.KeySize:] {
		k, err := reconcile.KeyFromBytes(b[:reconcile.KeySize])
		require.NoError(t, err)
		require.True(t, prev.Less(k) && k.Less(until), "split %v after %v, until %v", k, prev, until)
		prev = k
	}
	var sum uint64
	for _, c := range h.PartCounts {
		sum += c
	}
	require.Equal(t, h.Count, sum)
}

// fuzzServerSeeds are FuzzServeCatchUp's seeds: the requests a client
// sends, and malformed ones.
func fuzzServerSeeds(t testing.TB) map[string][]any {
	id, hidden, other := fuzzScope.ID(), fuzzHidden.ID(), fuzzOther.ID()
	lo, hi := reconcile.TimeBound(1000), reconcile.TimeBound(1100)
	resumed := fuzzCursors()[2].After
	req := func(r *pb.CatchUpRequest) []any { return []any{fuzzFrames(r)} }
	return map[string][]any{
		"whole-zstd":     req(&pb.CatchUpRequest{Scope: id[:], AcceptZstd: true}),
		"whole-plain":    req(&pb.CatchUpRequest{Scope: id[:], After: make([]byte, 40), MaxBytes: 64 << 10}),
		"range":          req(&pb.CatchUpRequest{Scope: id[:], After: lo.Bytes(), Until: hi.Bytes(), AcceptZstd: true, MaxBytes: 100 << 10}),
		"summary":        req(&pb.CatchUpRequest{Scope: id[:], After: lo.Bytes(), Summary: true}),
		"hidden":         req(&pb.CatchUpRequest{Scope: hidden[:]}),
		"unknown":        req(&pb.CatchUpRequest{Scope: other[:]}),
		"short-scope":    req(&pb.CatchUpRequest{Scope: id[:7]}),
		"short-after":    req(&pb.CatchUpRequest{Scope: id[:], After: lo.Bytes()[:39]}),
		"empty-range":    req(&pb.CatchUpRequest{Scope: id[:], After: hi.Bytes(), Until: hi.Bytes()}),
		"reversed-range": req(&pb.CatchUpRequest{Scope: id[:], After: hi.Bytes(), Until: lo.Bytes()}),
		"too-large":      req(&pb.CatchUpRequest{Scope: id[:], After: make([]byte, 2<<10)}),
		"empty":          {[]byte{}},
		// A range resumed after the key of a stored message, as a client
		// asks after a stream that ended early.
		"resumed":         req(&pb.CatchUpRequest{Scope: id[:], After: resumed.Bytes(), AcceptZstd: true}),
		"resumed-summary": req(&pb.CatchUpRequest{Scope: id[:], After: resumed.Bytes(), Until: hi.Bytes(), Summary: true}),
	}
}
