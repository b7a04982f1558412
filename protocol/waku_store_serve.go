package protocol

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio/protoio"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol/internal/streams"
	"github.com/storesync/storesync/reconcile"
)

// errBadQuery marks a request that breaks the Store v3 rules.
var errBadQuery = errors.New("bad store query")

// handle serves one Store v3 stream: it waits, with no deadline but as
// one of a bounded number of idle streams, for the request to begin, then
// reads it, answers it and closes.
func (w *WakuStore) handle(s network.Stream) {
	if !w.handlers.Enter() {
		_ = s.Reset()
		return
	}
	defer w.handlers.Done()
	const readBuf = 4 << 10
	if err := streams.Setup(s, WakuStoreServiceName, readBuf); err != nil {
		return
	}
	defer s.Scope().ReleaseMemory(readBuf)
	p := s.Conn().RemotePeer()

	br := bufio.NewReaderSize(s, readBuf)
	e := w.idle.add(p, s)
	if w.ctx.Err() != nil { // closed after resetAll: nobody resets s
		w.idle.done(e)
		_ = s.Reset()
		return
	}
	_ = s.SetReadDeadline(time.Time{})
	_, err := br.Peek(1)
	w.idle.done(e)
	if err != nil {
		_ = s.Reset()
		return
	}
	_ = s.SetDeadline(time.Now().Add(w.cfg.timeout))
	// The request is read whole before it is decoded.
	if err := s.Scope().ReserveMemory(w.cfg.maxRequestBytes, network.ReservationPriorityHigh); err != nil {
		w.reply(s, &pb.StoreQueryResponse{StatusCode: StatusServiceUnavailable, StatusDesc: "out of memory for queries"})
		return
	}
	defer s.Scope().ReleaseMemory(w.cfg.maxRequestBytes)
	var req pb.StoreQueryRequest
	if err := protoio.NewDelimitedReader(br, w.cfg.maxRequestBytes).ReadMsg(&req); err != nil {
		w.reply(s, &pb.StoreQueryResponse{StatusCode: StatusBadRequest, StatusDesc: "malformed request"})
		return
	}
	w.reply(s, w.answer(s, &req))
}

// answer checks the request against the peer's allowance and the rules,
// and queries the store.
func (w *WakuStore) answer(s network.Stream, req *pb.StoreQueryRequest) *pb.StoreQueryResponse {
	resp := &pb.StoreQueryResponse{RequestId: req.RequestId}
	fail := func(code uint32, err error) *pb.StoreQueryResponse {
		resp.StatusCode, resp.StatusDesc = code, err.Error()
		return resp
	}
	p := s.Conn().RemotePeer()
	if err := w.active.acquire(p); err != nil {
		return fail(StatusTooManyRequests, err)
	}
	defer w.active.release(p)
	q, err := parseStoreQuery(req, &w.cfg)
	if err != nil {
		return fail(StatusBadRequest, err)
	}
	mem := q.MaxBytes + 64<<10
	if err := s.Scope().ReserveMemory(mem, network.ReservationPriorityHigh); err != nil {
		return fail(StatusServiceUnavailable, errors.New("out of memory for queries"))
	}
	defer s.Scope().ReleaseMemory(mem)
	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.timeout)
	defer cancel()
	page, err := w.store.History(ctx, q)
	switch {
	case errors.Is(err, ErrUnknownCursor), errors.Is(err, ErrQueryTooBroad):
		return fail(StatusBadRequest, err)
	case err != nil:
		w.cfg.logger.Debug("store query failed", "peer", p, "err", err)
		return fail(StatusServiceUnavailable, errors.New("the store failed to answer"))
	}
	resp.StatusCode, resp.StatusDesc = StatusOK, "OK"
	resp.Messages = make([]*pb.WakuMessageKeyValue, len(page.Entries))
	for i, e := range page.Entries {
		kv := &pb.WakuMessageKeyValue{MessageHash: e.Hash[:]}
		if q.IncludeData && e.Message != nil {
			kv.Message, kv.PubsubTopic = WakuMessage(e.Message), e.Message.PubsubTopic
		}
		resp.Messages[i] = kv
	}
	if page.More && len(page.Entries) > 0 {
		// Forward, the next page follows the last entry; backward, it
		// precedes the first.
		at := page.Entries[len(page.Entries)-1].Hash
		if !q.Forward {
			at = page.Entries[0].Hash
		}
		resp.PaginationCursor = at[:]
	}
	return resp
}

// reply writes the response and closes the stream, or resets it.
func (w *WakuStore) reply(s network.Stream, resp *pb.StoreQueryResponse) {
	if w.cfg.hook != nil {
		w.cfg.hook(resp.StatusCode, len(resp.Messages))
	}
	if err := protoio.NewDelimitedWriter(s).WriteMsg(resp); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// parseStoreQuery checks a request against the Store v3 rules and the
// server's limits and returns the query it asks.
func parseStoreQuery(req *pb.StoreQueryRequest, cfg *wakuStoreConfig) (HistoryQuery, error) {
	q := HistoryQuery{
		PubsubTopic: req.PubsubTopic, ContentTopics: req.ContentTopics,
		Start: req.TimeStart, End: req.TimeEnd,
		Forward: req.PaginationForward, IncludeData: req.IncludeData,
		Limit: cfg.defaultLimit, MaxBytes: cfg.maxPageBytes,
	}
	bad := func(format string, args ...any) (HistoryQuery, error) {
		return HistoryQuery{}, fmt.Errorf("%w: "+format, append([]any{errBadQuery}, args...)...)
	}
	filtered := req.PubsubTopic != "" || len(req.ContentTopics) > 0 || req.TimeStart != 0 || req.TimeEnd != 0
	switch {
	case filtered && len(req.MessageHashes) > 0:
		return bad("content filter and message hashes in one query")
	case (req.PubsubTopic == "") != (len(req.ContentTopics) == 0):
		return bad("pubsub topic and content topics must be set together")
	case len(req.ContentTopics) > cfg.maxContentTopics:
		return bad("more than %d content topics", cfg.maxContentTopics)
	case len(req.MessageHashes) > cfg.maxHashes:
		return bad("more than %d message hashes", cfg.maxHashes)
	case req.TimeStart < 0 || req.TimeEnd < 0:
		return bad("negative time bound")
	case len(req.PaginationCursor) != 0 && len(req.PaginationCursor) != len(reconcile.Hash{}):
		return bad("a cursor of %d bytes", len(req.PaginationCursor))
	}
	for _, ct := range req.ContentTopics {
		if ct == "" {
			return bad("an empty content topic")
		}
	}
	for _, h := range req.MessageHashes {
		if len(h) != len(reconcile.Hash{}) {
			return bad("a message hash of %d bytes", len(h))
		}
		q.Hashes = append(q.Hashes, reconcile.Hash(h))
	}
	if len(req.PaginationCursor) != 0 {
		c := reconcile.Hash(req.PaginationCursor)
		q.Cursor = &c
	}
	if req.PaginationLimit > 0 {
		q.Limit = int(min(req.PaginationLimit, uint64(cfg.maxLimit)))
	}
	return q, nil
}
