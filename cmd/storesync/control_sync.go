package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

const (
	// connectTimeout bounds dialing the peer of a sync request.
	connectTimeout = 30 * time.Second
	// maxSyncBody bounds the body of a sync request.
	maxSyncBody = 1 << 20
)

// handleSync serves POST /v1/sync. Everything that can fail fast (the
// body, the scopes, the peer, connecting) fails with a status; once the
// sync has started, the answer is a stream of lines and its last line
// says how it ended.
func (c *controlServer) handleSync(w http.ResponseWriter, r *http.Request) {
	var req syncRequest
	if err := decodeBody(w, r, maxSyncBody, &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	scopes, err := c.syncScopes(&req)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(c.stopping, cancel)()
	p, err := c.connect(ctx, req.Peer)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	out := &lineWriter{w: w, rc: http.NewResponseController(w)}
	// The client learns at once that the sync has started, not with the
	// first line, which may be a long reconciliation away.
	out.flush()
	pump := newProgressPump()
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		pump.run(func(pr protocol.Progress) {
			out.write(syncLine{Progress: &syncProgress{Kind: string(pr.Kind), PubsubTopic: pr.Scope.PubsubTopic,
				ContentTopic: pr.Scope.ContentTopic, Done: pr.Done, Total: pr.Total, Bytes: pr.Bytes}})
		})
	}()
	rep, err := c.node.SyncNow(protocol.WithProgress(ctx, pump.note), p, scopes...)
	pump.close()
	<-pumped
	switch {
	case err != nil && c.stopping.Err() != nil:
		out.write(syncLine{Error: "node shutting down: " + err.Error()})
	case err != nil:
		out.write(syncLine{Error: err.Error()})
	default:
		out.write(syncLine{Report: reportJSON(rep)})
	}
}

// syncScopes resolves the scopes of a sync request: its content topics
// under its pubsub topic (the node's if it names none); with no content
// topics, every kept scope under the pubsub topic it names, or nil, which
// SyncNow takes for every kept scope, if it names none either.
func (c *controlServer) syncScopes(req *syncRequest) ([]reconcile.Scope, error) {
	if len(req.ContentTopics) == 0 {
		if req.PubsubTopic == "" {
			return nil, nil
		}
		return c.scopesUnder(req.PubsubTopic)
	}
	scopes := make([]reconcile.Scope, 0, len(req.ContentTopics))
	for _, ct := range req.ContentTopics {
		sc, err := c.scope(req.PubsubTopic, ct)
		if err != nil {
			return nil, err
		}
		scopes = append(scopes, sc)
	}
	return scopes, nil
}

// connect resolves the peer of a sync request: a multiaddr is dialed, a
// bare peer ID must be one the node can already reach.
func (c *controlServer) connect(ctx context.Context, s string) (peer.ID, error) {
	h := c.node.Host()
	if s == "" {
		return "", badInput("peer is required")
	}
	if strings.HasPrefix(s, "/") {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return "", badInput("peer %q: want a multiaddr ending in /p2p/<peer ID>: %v", s, err)
		}
		if ai.ID == h.ID() {
			return "", badInput("peer %s is this node", ai.ID)
		}
		ctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		if err := c.node.Connect(ctx, *ai); err != nil {
			return "", fmt.Errorf("connect to %s: %w", s, err)
		}
		return ai.ID, nil
	}
	id, err := peer.Decode(s)
	if err != nil {
		return "", badInput("peer %q is neither a multiaddr nor a peer ID: %v", s, err)
	}
	if id == h.ID() {
		return "", badInput("peer %s is this node", id)
	}
	if h.Network().Connectedness(id) != network.Connected && len(h.Peerstore().Addrs(id)) == 0 {
		return "", badInput("no address known for peer %s: give its full multiaddr", id)
	}
	return id, nil
}

// reportJSON converts a sync report to its JSON form.
func reportJSON(rep *protocol.Report) *syncReport {
	out := &syncReport{Peer: rep.Peer.String(), DurationMS: millis(rep.Duration), Scopes: []syncScopeReport{}}
	for _, s := range rep.Scopes {
		sr := syncScopeReport{
			PubsubTopic: s.Scope.PubsubTopic, ContentTopic: s.Scope.ContentTopic,
			Need: s.Need, Have: s.Have, Received: s.Received, Rejected: s.Rejected, Sent: s.Sent, Streamed: s.Streamed,
			Bytes: s.Bytes, RoundTrips: s.RoundTrips, DurationMS: millis(s.Duration),
		}
		if s.Err != nil {
			sr.Error = s.Err.Error()
		}
		out.Scopes = append(out.Scopes, sr)
	}
	return out
}

// lineWriter writes JSON lines and flushes each, so that the client sees
// progress as it happens. After the first failed write (the client has
// gone) it writes nothing more. It is not safe for concurrent use.
type lineWriter struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	failed bool
}

func (l *lineWriter) write(v any) {
	if l.failed {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		_, err = l.w.Write(append(b, '\n'))
	}
	if err != nil {
		l.failed = true
		return
	}
	l.flush()
}

func (l *lineWriter) flush() {
	if err := l.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		l.failed = true
	}
}
