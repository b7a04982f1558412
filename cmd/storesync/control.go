package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// controlServer serves the control API of a running node: HTTP/1.1 with
// JSON bodies over the Unix socket DIR/control.sock, which only the
// node's user may open (the socket is mode 0600). Every path starts with
// /v1; a change that breaks clients gets a new prefix, and fields added
// within /v1 are optional. A scope is named by a content topic and a
// pubsub topic; a pubsub topic that is absent or "" means the node's own
// (run --pubsub-topic), so clients need not know the node's flags, and
// scopes the node keeps under other pubsub topics (from a run with
// another --pubsub-topic: scopes persist in the store) are reached by
// naming theirs.
//
//	POST /v1/put
//	  {"pubsub_topic": P, "content_topic": C, "payloads": ["text", ...],
//	   "timestamp": NS}
//	  Stores one message per payload in the scope (P, C). Timestamp 0
//	  means now; payload i gets timestamp + i, so the messages keep their
//	  order.
//	  -> {"added": [{"hash": HEX, "timestamp": NS}], "duplicates": N,
//	      "rejected": [{"index": I, "error": "..."}]}
//
//	GET /v1/query?pubsub_topic=P&content_topic=C&from=NS&to=NS&after=CURSOR&limit=N
//	  One page of the messages of the scope (P, C) with from <= timestamp
//	  < to (to 0 or absent: no bound), in timestamp order, after the
//	  cursor (absent: from the start), at most limit (default 100, at
//	  most 10,000).
//	  -> {"messages": [{"hash", "timestamp", "payload", "payload_hex"}],
//	      "next": CURSOR, "more": BOOL}
//	  A cursor is the hex of a key's 40 bytes (reconcile.Key.Bytes); next
//	  is "" when more is false.
//
//	GET /v1/status
//	  -> {"peer_id": ID, "addrs": [MULTIADDR],
//	      "scopes": [{"pubsub_topic", "content_topic", "count",
//	                  "root": HEX (16 bytes), "newest": NS,
//	                  "last_sync": {"peer", "at", "received", "sent"} or null}],
//	      "groups": [...]}
//
//	POST /v1/sync
//	  {"peer": MULTIADDR or PEER ID, "pubsub_topic": P, "content_topics": [C, ...]}
//	  Syncs scopes with the peer now, connecting first if peer is a
//	  multiaddr. The scopes are (P, C) for each content topic given; with
//	  none, every kept scope under P if P is given, else every kept scope
//	  under any pubsub topic. The answer is a stream of JSON lines
//	  (application/x-ndjson), each flushed when written:
//	  {"progress": {"kind", "pubsub_topic", "content_topic", "done",
//	  "total", "bytes"}} while messages arrive (kind "fetch" or
//	  "catch-up": an empty or far-behind scope is streamed), then one
//	  last line, {"report": {"peer", "duration_ms", "scopes":
//	  [{"pubsub_topic", "content_topic", "need", "have", "received",
//	  "rejected", "sent", "streamed", "bytes", "round_trips",
//	  "duration_ms", "error"}]}} or {"error": "..."}.
//
//	POST /v1/sync-group
//	  {"group": NAME}
//	  Syncs a joined group with a few of its members now.
//	  -> {"group": NAME, "peers": [ID, ...]}
//
//	POST /v1/export
//	  {"pubsub_topic": P, "content_topic": C, "path": FILE}
//	  Writes the scope (P, C) to a snapshot file at FILE, an absolute
//	  path on the node's machine, which appears whole or not at all. The
//	  answer is a stream of JSON lines like a sync's: {"progress":
//	  {"kind": "export", "pubsub_topic", "content_topic", "done", "total",
//	  "bytes"}} while batches are written, then {"report": {"path",
//	  "pubsub_topic", "content_topic", "count", "root": HEX (16 bytes),
//	  "size", "created", "duration_ms"}} or {"error": "..."}.
//
//	POST /v1/import
//	  {"path": FILE}
//	  Stores the messages of the snapshot file at FILE, an absolute path
//	  on the node's machine, keeping its scope. The answer is a stream of
//	  JSON lines: progress lines of kind "verify" while the whole file is
//	  checked, before anything is stored (into a scope that holds
//	  messages; a new or empty one is restored in one pass), then of
//	  kind "import" while it is stored, then {"report": {"path", "pubsub_topic", "content_topic",
//	  "count", "root", "size", "created", "batches", "added",
//	  "duplicates", "rejected", "reject_reason", "resumed",
//	  "resumed_batches", "resumed_messages", "bytes", "verify_ms",
//	  "store_ms", "scope_count", "scope_root"}} or {"error": "..."}, the
//	  reader's error for a bad file. Hanging up stops the import; asking
//	  again resumes it.
//
// A request that fails before any answer gets {"error": "..."} with
// status 400 for bad input, 404 for a scope the node does not keep (the
// message lists the content topics kept under the pubsub topic asked for
// or, if there are none, the pubsub topics that have scopes), 405 for a
// wrong method, and 500 otherwise.
type controlServer struct {
	node *node.Node
	// pubsub is the node's pubsub topic, the one a request means when it
	// names none.
	pubsub string
	// autoshard, if set, gives the pubsub topic a request means when it
	// names a content topic and no pubsub topic (run --relay).
	autoshard func(contentTopic string) (string, error)
	// stopping ends when the node shuts down: a sync in progress stops
	// then, rather than holding the shutdown up until its timeout.
	stopping context.Context
}

// handler returns the routes of the API.
func (c *controlServer) handler() http.Handler {
	routes := []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{http.MethodPost, "/put", c.handlePut},
		{http.MethodGet, "/query", c.handleQuery},
		{http.MethodGet, "/status", c.handleStatus},
		{http.MethodPost, "/sync", c.handleSync},
		{http.MethodPost, "/sync-group", c.handleGroupSync},
		{http.MethodPost, "/export", c.handleExport},
		{http.MethodPost, "/import", c.handleImport},
	}
	mux := http.NewServeMux()
	allowed := make(map[string]string)
	for _, rt := range routes {
		mux.HandleFunc(rt.method+" "+apiVersion+rt.path, rt.h)
		allowed[apiVersion+rt.path] = rt.method
	}
	// The catch-all keeps every answer JSON, the mux's own 404 and 405
	// included.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if m, ok := allowed[r.URL.Path]; ok {
			w.Header().Set("Allow", m)
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: use %s", r.Method, r.URL.Path, m))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s", r.URL.Path))
	})
	return mux
}

// errBadInput marks an error caused by the request itself (status 400).
var errBadInput = errors.New("bad request")

func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadInput, fmt.Sprintf(format, args...))
}

// pubsubTopic returns the pubsub topic a request means: the one it
// names, or the node's if it names none.
func (c *controlServer) pubsubTopic(asked string) string {
	if asked == "" {
		return c.pubsub
	}
	return asked
}

// scope returns the kept scope of a content topic under a pubsub topic
// ("" for the node's), or an error that maps to 404.
func (c *controlServer) scope(pubsubTopic, contentTopic string) (reconcile.Scope, error) {
	if contentTopic == "" {
		return reconcile.Scope{}, badInput("content_topic is required")
	}
	pt := c.pubsubTopic(pubsubTopic)
	if pubsubTopic == "" && c.autoshard != nil {
		var err error
		if pt, err = c.autoshard(contentTopic); err != nil {
			return reconcile.Scope{}, badInput("content_topic %s: %v", contentTopic, err)
		}
	}
	sc := reconcile.Scope{PubsubTopic: pt, ContentTopic: contentTopic}
	if _, ok := c.node.Store().Stats(sc); !ok {
		return sc, c.unknownScope(sc)
	}
	return sc, nil
}

// scopesUnder returns every kept scope under a pubsub topic, or an error
// that maps to 404 if there is none.
func (c *controlServer) scopesUnder(pubsubTopic string) ([]reconcile.Scope, error) {
	var out []reconcile.Scope
	for _, sc := range c.node.Store().Scopes() {
		if sc.PubsubTopic == pubsubTopic {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, c.unknownScope(reconcile.Scope{PubsubTopic: pubsubTopic})
	}
	return out, nil
}

// unknownScope explains that the node does not keep sc (a ContentTopic
// of "" stands for any): it lists the content topics kept under sc's
// pubsub topic or, if there are none, the pubsub topics that have
// scopes, which is what a user who mistyped either needs to see.
func (c *controlServer) unknownScope(sc reconcile.Scope) error {
	var under, pubsubs []string
	for _, k := range c.node.Store().Scopes() {
		if k.PubsubTopic == sc.PubsubTopic {
			under = append(under, k.ContentTopic)
		}
		pubsubs = append(pubsubs, k.PubsubTopic)
	}
	slices.Sort(pubsubs)
	pubsubs = slices.Compact(pubsubs)
	switch {
	case len(under) > 0:
		return fmt.Errorf("%w: content topic %q under pubsub topic %q (this node keeps %s under it)",
			node.ErrUnknownScope, sc.ContentTopic, sc.PubsubTopic, strings.Join(under, ", "))
	case len(pubsubs) > 0:
		return fmt.Errorf("%w: no scope kept under pubsub topic %q (this node keeps scopes under %s)",
			node.ErrUnknownScope, sc.PubsubTopic, strings.Join(pubsubs, ", "))
	}
	return fmt.Errorf("%w: this node keeps no scopes", node.ErrUnknownScope)
}

// statusOf maps an error to the HTTP status that describes it.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errBadInput), errors.Is(err, node.ErrBadQuery):
		return http.StatusBadRequest
	case errors.Is(err, node.ErrUnknownScope), errors.Is(err, protocol.ErrUnknownScope):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// decodeBody reads a JSON request body of at most limit bytes into v.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badInput("body: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The client may be gone; nobody is left to tell.
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, errorBody{Error: err.Error()})
}
