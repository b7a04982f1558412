package main

import (
	"net/http"
	"time"

	"github.com/storesync/storesync/reconcile"
)

const (
	// maxPutPayloads bounds the messages of one put request; the put
	// command sends 1,000 at a time.
	maxPutPayloads = 10_000
	// maxPutBody bounds the body of one put request.
	maxPutBody = 64 << 20
)

// handlePut serves POST /v1/put.
func (c *controlServer) handlePut(w http.ResponseWriter, r *http.Request) {
	var req putRequest
	if err := decodeBody(w, r, maxPutBody, &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	sc, err := c.scope(req.PubsubTopic, req.ContentTopic)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	switch {
	case len(req.Payloads) > maxPutPayloads:
		writeError(w, http.StatusBadRequest, badInput("%d payloads, at most %d a request", len(req.Payloads), maxPutPayloads))
		return
	case req.Timestamp < 0 || req.Timestamp > reconcile.MaxTimestamp-int64(len(req.Payloads)):
		writeError(w, http.StatusBadRequest, badInput("timestamp %d out of range", req.Timestamp))
		return
	}
	base := req.Timestamp
	if base == 0 {
		base = time.Now().UnixNano()
	}
	msgs := make([]reconcile.Message, len(req.Payloads))
	for i, p := range req.Payloads {
		msgs[i] = reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic,
			Payload: []byte(p), Timestamp: base + int64(i)}
	}
	res, err := c.node.Put(r.Context(), msgs...)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	out := putResponse{Added: make([]putAdded, 0, len(res.Added)), Duplicates: res.Duplicates, Rejected: []putRejected{}}
	for i := range res.Added {
		out.Added = append(out.Added, putAdded{Hash: res.Added[i].Hash().String(), Timestamp: res.Added[i].Timestamp})
	}
	for _, rj := range res.Rejected {
		out.Rejected = append(out.Rejected, putRejected{Index: rj.Index, Error: rj.Err.Error()})
	}
	writeJSON(w, http.StatusOK, out)
}
