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

// The client's limits in FuzzCatchUpClient: the smallest batch the
// options allow, and messages small enough that the fuzzer meets the
// size check.
const (
	fuzzClientBatch   = 64 << 10
	fuzzClientMaxSize = 4 << 10
)

// fuzzVeto is the payload prefix FuzzCatchUpClient's validator vetoes.
var fuzzVeto = []byte("veto")

// fuzzClient returns a catch-up client over a host whose next stream
// replays in, with a store that records what it is handed.
func fuzzClient(t testing.TB, in []byte) (*Service, *scriptedStream, *fuzzStore) {
	st := newScriptedStream(in)
	store := newFuzzStore(nil)
	svc, err := New(newScriptedHost(st), store,
		WithBatchLimits(1024, fuzzClientBatch),
		WithMaxMessageSize(fuzzClientMaxSize),
		WithLogger(fuzzDiscardLogger),
		WithValidator(func(_ context.Context, _ peer.ID, m *reconcile.Message) error {
			if bytes.HasPrefix(m.Payload, fuzzVeto) {
				return errors.New("vetoed")
			}
			return nil
		}))
	require.NoError(t, err)
	return svc, st, store
}

// fuzzServed are the messages the seed streams serve: 400 of fuzzScope
// over the timestamps 1000 to 1199, in two batches of the client's size.
func fuzzServed() []reconcile.Message { return fuzzMessages(fuzzScope, 1000, 400, 160) }

// fuzzCursors are the ranges FuzzCatchUpClient streams, by its which
// argument: the whole key space; a range of timestamps from its start;
// the same range resumed after the key of a served message.
func fuzzCursors() []Cursor {
	resumed := newFuzzStore(map[reconcile.Scope][]reconcile.Message{fuzzScope: fuzzServed()}).keys[fuzzScope][100]
	lo, hi := reconcile.TimeBound(1000), reconcile.TimeBound(2000)
	return []Cursor{
		{Lo: reconcile.Key{}, Hi: reconcile.End, After: reconcile.Key{}},
		{Lo: lo, Hi: hi, After: lo},
		{Lo: lo, Hi: hi, After: resumed},
	}
}

// FuzzCatchUpClient replays arbitrary bytes as a server's side of one
// catch-up stream (the header, then batches) to the client, streamOnce
// with readBatches, unpack and storeBatch, for one of fuzzCursors. What
// the client hands to the store must respect the limits whatever the
// server sends:
//
//   - every batch stored has at most the batch limit plus its slack of
//     message bytes, and every message in it passes check (scope,
//     Validate, size, validator);
//   - keys strictly increase across batches and stay within
//     (cursor.After, cursor.Hi);
//   - each batch is stored with one cursor of the same range that moves
//     forward (to the batch's last key) or ends the range, and nothing is
//     stored after a batch that ended it; the caller's cursor ends as the
//     last one stored;
//   - errors are the package's sentinels, a *RemoteError, or the
//     stream's end (io.EOF, io.ErrUnexpectedEOF); nothing panics;
//   - the heap allocated is bounded by the input's frames: at most the
//     decompression limit's worth per frame, not what a compressed
//     payload claims.
func FuzzCatchUpClient(f *testing.F) {
	curs := fuzzCursors()
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		start := curs[int(which)%len(curs)]
		svc, st, store := fuzzClient(t, data)
		defer svc.Close()
		cur := start
		var err error
		alloc := fuzzAllocated(func() {
			put, _, _ := startLoad(context.Background(), store, fuzzScope, nil)
			err = svc.streamOnce(context.Background(), fuzzPeer, fuzzScope, &cur, newTally(fuzzScope), put)
		})
		limit := fuzzClientBatch + batchOverhead
		nframes := uint64(len(fuzzSplitFrames(data)))
		require.LessOrEqual(t, alloc, 4<<20+nframes*4*uint64(limit)+32*uint64(len(data)),
			"allocated %d bytes for %d bytes in %d frames", alloc, len(data), nframes)
		if err != nil {
			require.True(t, fuzzOneOf(err, ErrBadRequest, ErrTooLarge, ErrRefused, io.EOF, io.ErrUnexpectedEOF),
				"not a sentinel: %v", err)
		}

		// The request asks for the cursor's remainder.
		var req pb.CatchUpRequest
		require.NoError(t, protoio.NewDelimitedReader(bytes.NewReader(st.written()), 1<<10).ReadMsg(&req))
		id := fuzzScope.ID()
		require.Equal(t, id[:], req.Scope)
		require.Equal(t, start.After.Bytes(), req.After)
		if start.Hi == reconcile.End {
			require.Empty(t, req.Until)
		} else {
			require.Equal(t, start.Hi.Bytes(), req.Until)
		}
		require.Equal(t, uint32(fuzzClientBatch), req.MaxBytes)

		want := start
		prevKey, prevAfter, done := start.After, start.After, false
		for _, put := range store.puts {
			require.False(t, done, "a batch stored after the range was done")
			require.Equal(t, fuzzScope, put.scope)
			require.Len(t, put.curs, 1)
			c := put.curs[0]
			require.Equal(t, fuzzPeer, c.Peer)
			require.Equal(t, start.Lo, c.Lo)
			require.Equal(t, start.Hi, c.Hi)
			require.True(t, c.After.Less(c.Hi), "cursor after %v at or past its range's end %v", c.After, c.Hi)
			require.True(t, prevAfter.Less(c.After) || (c.Done && prevAfter == c.After),
				"cursor from %v to %v", prevAfter, c.After)
			size := 0
			for _, m := range put.msgs {
				k := m.Key()
				require.True(t, prevKey.Less(k), "key %v after %v", k, prevKey)
				require.False(t, c.After.Less(k), "key %v past its batch's cursor %v", k, c.After)
				require.Empty(t, svc.check(context.Background(), fuzzPeer, fuzzScope, &m))
				size += m.Size()
				prevKey = k
			}
			require.LessOrEqual(t, size, limit, "a batch of %d message bytes", size)
			prevAfter, done, want = c.After, c.Done, c
		}
		require.Equal(t, want, cur)
	})
}

// fuzzServe runs the server's side of one catch-up stream for req over
// store and returns what it wrote.
func fuzzServe(t testing.TB, svc *Service, req *pb.CatchUpRequest) []byte {
	st := newScriptedStream(fuzzFrames(req))
	require.NoError(t, svc.serveCatchUp(context.Background(), fuzzPeer, newConn(st, 1<<10, time.Minute, time.Time{})))
	return st.written()
}

// fuzzClientSeeds are FuzzCatchUpClient's seeds: streams the server
// sends for each cursor, plain and compressed, and damaged ones near
// them.
func fuzzClientSeeds(t testing.TB) map[string][]any {
	served := fuzzServed()
	store := newFuzzStore(map[reconcile.Scope][]reconcile.Message{fuzzScope: served})
	svc, err := New(newScriptedHost(), store, WithBatchLimits(1024, fuzzClientBatch), WithMaxMessageSize(fuzzClientMaxSize),
		WithLogger(fuzzDiscardLogger))
	require.NoError(t, err)
	defer svc.Close()
	curs := fuzzCursors()
	id := fuzzScope.ID()
	request := func(c Cursor, zstd bool) *pb.CatchUpRequest {
		req := &pb.CatchUpRequest{Scope: id[:], After: c.After.Bytes(), AcceptZstd: zstd, MaxBytes: fuzzClientBatch}
		if c.Hi != reconcile.End {
			req.Until = c.Hi.Bytes()
		}
		return req
	}
	whole := fuzzServe(t, svc, request(curs[0], true))
	few := request(curs[1], false) // a server may end a range early
	few.Until = reconcile.TimeBound(1010).Bytes()
	header := &pb.CatchUpHeader{Count: 400, Root: make([]byte, 16)}
	pbs := func(ms ...reconcile.Message) *pb.MessageBatch {
		b := &pb.MessageBatch{}
		for _, m := range ms {
			b.Messages = append(b.Messages, m.ToPB())
		}
		return b
	}
	bad := func(ts int64, edit func(*reconcile.Message)) reconcile.Message {
		m := reconcile.Message{PubsubTopic: fuzzScope.PubsubTopic, ContentTopic: fuzzScope.ContentTopic, Payload: []byte("x"), Timestamp: ts}
		edit(&m)
		return m
	}
	rejected := pbs(
		bad(1001, func(m *reconcile.Message) { m.ContentTopic = fuzzOther.ContentTopic }),
		bad(1002, func(m *reconcile.Message) { m.PubsubTopic = "" }),
		bad(1003, func(m *reconcile.Message) { m.Payload = bytes.Repeat([]byte("big "), fuzzClientMaxSize/4) }),
		bad(1004, func(m *reconcile.Message) { m.Payload = append(fuzzVeto, '!') }),
		bad(1005, func(*reconcile.Message) {}),
	)
	raw, err := rejected.Marshal()
	require.NoError(t, err)
	swapped := pbs(served[:4]...)
	swapped.Messages[1], swapped.Messages[2] = swapped.Messages[2], swapped.Messages[1]
	return map[string][]any{
		"whole-zstd":    {uint8(0), whole},
		"range-plain":   {uint8(1), fuzzServe(t, svc, few)},
		"range":         {uint8(1), fuzzServe(t, svc, request(curs[1], true))},
		"resumed":       {uint8(2), fuzzServe(t, svc, request(curs[2], true))},
		"cut-short":     {uint8(0), bytes.Join(fuzzSplitFrames(whole)[:2], nil)},
		"empty":         {uint8(0), []byte{}},
		"header-error":  {uint8(0), fuzzFrames(&pb.CatchUpHeader{Error: &pb.Error{Code: pb.Code_UNSUPPORTED_SCOPE}})},
		"batch-error":   {uint8(0), fuzzFrames(header, &pb.CatchUpBatch{Error: &pb.Error{Code: pb.Code_BUSY, Detail: "later"}})},
		"rejected":      {uint8(1), fuzzFrames(header, &pb.CatchUpBatch{Batch: rejected, Done: true})},
		"rejected-zstd": {uint8(1), fuzzFrames(header, &pb.CatchUpBatch{Zstd: fuzzZstd(raw), Done: true})},
		"out-of-order":  {uint8(1), fuzzFrames(header, &pb.CatchUpBatch{Batch: swapped})},
		"bomb":          {uint8(0), fuzzFrames(header, &pb.CatchUpBatch{Zstd: compress(make([]byte, 4<<20))})},
		"both":          {uint8(0), fuzzFrames(header, &pb.CatchUpBatch{Batch: pbs(served[0]), Zstd: compress(make([]byte, 2<<10))})},
		"empty-batch":   {uint8(0), fuzzFrames(header, &pb.CatchUpBatch{})},
		"done-empty":    {uint8(2), fuzzFrames(header, &pb.CatchUpBatch{Done: true})},
	}
}

// FuzzCutRanges plans a catch-up from an arbitrary summary header, as
// plan does with the fullest peer's: a header that is not well formed
// is ErrBadRequest; a plan covers (lo, hi) exactly with contiguous,
// non-empty, fresh ranges, cut between timestamps (a Cursor's Lo is
// exclusive, which only a bound between timestamps makes safe), and at
// most one more range than asked for (the cut rounds the share of each).
// which picks the number of peers (its low three bits) and the window.
func FuzzCutRanges(f *testing.F) {
	windows := [][2]reconcile.Key{{{}, reconcile.End}, {reconcile.TimeBound(1000), reconcile.TimeBound(2000)}}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		if len(data) > 32<<10 {
			return // more than the summary's reader takes
		}
		var h pb.CatchUpHeader
		if h.Unmarshal(data) != nil {
			return
		}
		n := rangesPerPeer * (2 + int(which&7))
		w := windows[int(which>>3)%len(windows)]
		lo, hi := w[0], w[1]
		out, err := cutRanges(lo, hi, &h, n, newTally(fuzzScope))
		if err != nil {
			require.ErrorIs(t, err, ErrBadRequest)
			require.Nil(t, out)
			return
		}
		require.NotEmpty(t, out)
		require.Equal(t, lo, out[0].Lo)
		require.Equal(t, hi, out[len(out)-1].Hi)
		for i, c := range out {
			require.True(t, c.Lo.Less(c.Hi), "range %d: (%v, %v)", i, c.Lo, c.Hi)
			require.Equal(t, Cursor{Lo: c.Lo, Hi: c.Hi, After: c.Lo}, c)
			if i > 0 {
				require.Equal(t, out[i-1].Hi, c.Lo)
				require.Equal(t, reconcile.TimeBound(c.Lo.TS), c.Lo, "range %d starts at %v, not between timestamps", i, c.Lo)
			}
		}
		require.LessOrEqual(t, len(out), n+1, "%d ranges for %d", len(out), n)
	})
}

// fuzzSummarySeeds are FuzzCutRanges's seeds: summaries the server sends
// for the seed scope, and a few damaged ones.
func fuzzSummarySeeds(t testing.TB) map[string][]any {
	store := newFuzzStore(map[reconcile.Scope][]reconcile.Message{fuzzScope: fuzzMessages(fuzzScope, 1000, 6000, 8)})
	svc, err := New(newScriptedHost(), store, WithLogger(fuzzDiscardLogger))
	require.NoError(t, err)
	defer svc.Close()
	id := fuzzScope.ID()
	summary := func(after, until reconcile.Key) []byte {
		req := &pb.CatchUpRequest{Scope: id[:], After: after.Bytes(), Summary: true}
		if until != reconcile.End {
			req.Until = until.Bytes()
		}
		var h pb.CatchUpHeader
		require.NoError(t, protoio.NewDelimitedReader(bytes.NewReader(fuzzServe(t, svc, req)), 32<<10).ReadMsg(&h))
		raw, err := h.Marshal()
		require.NoError(t, err)
		return raw
	}
	whole := summary(reconcile.Key{}, reconcile.End)
	window := summary(reconcile.TimeBound(1000), reconcile.TimeBound(2000))
	small, err := (&pb.CatchUpHeader{Count: 10, PartCounts: []uint64{10}}).Marshal()
	require.NoError(t, err)
	var h pb.CatchUpHeader
	require.NoError(t, h.Unmarshal(whole))
	h.Splits = h.Splits[:len(h.Splits)-1]
	truncated, err := h.Marshal()
	require.NoError(t, err)
	// A hostile summary: splits on messages' keys rather than between
	// timestamps, and part counts that add up to far more than the count.
	var onKey, inflated pb.CatchUpHeader
	require.NoError(t, onKey.Unmarshal(whole))
	for i := 8; i < len(onKey.Splits); i += reconcile.KeySize {
		onKey.Splits[i] = 0xff // the first byte of each split's hash
	}
	require.NoError(t, inflated.Unmarshal(whole))
	inflated.Count = minSplit
	for i := range inflated.PartCounts {
		inflated.PartCounts[i] = 1 << 20
	}
	marshal := func(h *pb.CatchUpHeader) []byte {
		raw, err := h.Marshal()
		require.NoError(t, err)
		return raw
	}
	return map[string][]any{
		"split-on-key":   {uint8(0), marshal(&onKey)},
		"inflated-parts": {uint8(0), marshal(&inflated)},
		"whole-2":        {uint8(0), whole},
		"window-3":       {uint8(8 + 1), window},
		"small":          {uint8(0), small},
		"truncated":      {uint8(0), truncated},
		"empty":          {uint8(0), []byte{}},
	}
}
