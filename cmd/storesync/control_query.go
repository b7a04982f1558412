package main

import (
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"

	"github.com/storesync/storesync/node"
)

// handleQuery serves GET /v1/query.
func (c *controlServer) handleQuery(w http.ResponseWriter, r *http.Request) {
	q, err := c.parseQuery(r.URL.Query())
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	page, err := c.node.Query(r.Context(), q)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	out := queryResponse{Messages: make([]queryMessage, 0, len(page.Messages)), More: page.More}
	if page.More {
		out.Next = formatCursor(page.Next)
	}
	for i := range page.Messages {
		m := &page.Messages[i]
		out.Messages = append(out.Messages, queryMessage{Hash: m.Hash().String(), Timestamp: m.Timestamp,
			Payload: string(m.Payload), PayloadHex: hex.EncodeToString(m.Payload)})
	}
	writeJSON(w, http.StatusOK, out)
}

// parseQuery reads the parameters of /v1/query.
func (c *controlServer) parseQuery(v url.Values) (node.Query, error) {
	var q node.Query
	var err error
	if q.Scope, err = c.scope(v.Get("pubsub_topic"), v.Get("content_topic")); err != nil {
		return q, err
	}
	if q.From, err = intParam(v, "from"); err != nil {
		return q, err
	}
	if q.To, err = intParam(v, "to"); err != nil {
		return q, err
	}
	limit, err := intParam(v, "limit")
	if err != nil {
		return q, err
	}
	q.Limit = int(min(limit, node.MaxQueryLimit))
	if q.After, err = parseCursor(v.Get("after")); err != nil {
		return q, badInput("after: %v", err)
	}
	return q, nil
}

// intParam reads a non-negative integer parameter; absent is 0.
func intParam(v url.Values, name string) (int64, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, badInput("%s: want a non-negative integer, got %q", name, s)
	}
	return n, nil
}
