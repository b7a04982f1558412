package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

const (
	testPubsub = "/waku/2/rs/1/0"
	testTopic  = "/demo/1/chat/proto"
)

// newTestNode starts a node in memory on 127.0.0.1 keeping testTopic
// under testPubsub, the pubsub topic its control server calls the node's,
// and the more scopes given.
func newTestNode(t *testing.T, more ...reconcile.Scope) *node.Node {
	t.Helper()
	n, err := node.New(t.Context(), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
		node.WithListenAddrs("/ip4/127.0.0.1/tcp/0"),
		node.WithScopes(append([]reconcile.Scope{{PubsubTopic: testPubsub, ContentTopic: testTopic}}, more...)...))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}

// serveControl serves n's control API on a socket in a fresh data folder
// and returns a client for it.
func serveControl(t *testing.T, n *node.Node) *controlClient {
	t.Helper()
	dir := t.TempDir()
	path, err := socketPath(dir)
	require.NoError(t, err)
	l, err := listenControl(path)
	require.NoError(t, err)
	stopping, stop := context.WithCancel(context.Background())
	srv := &http.Server{Handler: (&controlServer{node: n, pubsub: testPubsub, stopping: stopping}).handler(),
		ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, srv.Close())
	})
	c, err := newControlClient(dir)
	require.NoError(t, err)
	return c
}

// raw sends a request and returns the status and body as they are.
func raw(t *testing.T, c *controlClient, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://storesync"+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := c.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestControlPutQueryStatus(t *testing.T) {
	n := newTestNode(t)
	c := serveControl(t, n)
	ctx := t.Context()

	var put putResponse
	require.NoError(t, c.call(ctx, http.MethodPost, "/put",
		putRequest{ContentTopic: testTopic, Payloads: []string{"one", "two", "three"}, Timestamp: 1000}, &put))
	require.Len(t, put.Added, 3)
	require.Equal(t, []int64{1000, 1001, 1002}, []int64{put.Added[0].Timestamp, put.Added[1].Timestamp, put.Added[2].Timestamp})
	require.Equal(t, reconcile.MessageHash(testPubsub, testTopic, []byte("two"), nil, 1001).String(), put.Added[1].Hash)
	require.Empty(t, put.Rejected)

	// The same request again adds nothing.
	require.NoError(t, c.call(ctx, http.MethodPost, "/put",
		putRequest{ContentTopic: testTopic, Payloads: []string{"one", "two", "three"}, Timestamp: 1000}, &put))
	require.Empty(t, put.Added)
	require.Equal(t, 3, put.Duplicates)

	var page queryResponse
	require.NoError(t, c.call(ctx, http.MethodGet, "/query?content_topic="+testTopic+"&limit=2", nil, &page))
	require.True(t, page.More)
	require.Len(t, page.Messages, 2)
	require.Equal(t, "one", page.Messages[0].Payload)
	require.Equal(t, "6f6e65", page.Messages[0].PayloadHex)
	require.NoError(t, c.call(ctx, http.MethodGet, "/query?content_topic="+testTopic+"&after="+page.Next, nil, &page))
	require.False(t, page.More)
	require.Empty(t, page.Next)
	require.Len(t, page.Messages, 1)
	require.Equal(t, "three", page.Messages[0].Payload)

	require.NoError(t, c.call(ctx, http.MethodGet, "/query?content_topic="+testTopic+"&from=1001&to=1002", nil, &page))
	require.Len(t, page.Messages, 1)
	require.Equal(t, "two", page.Messages[0].Payload)

	var st statusResponse
	require.NoError(t, c.call(ctx, http.MethodGet, "/status", nil, &st))
	require.Equal(t, n.Host().ID().String(), st.PeerID)
	require.NotEmpty(t, st.Addrs)
	require.Len(t, st.Scopes, 1)
	stats, _ := n.Store().Stats(reconcile.Scope{PubsubTopic: testPubsub, ContentTopic: testTopic})
	require.Equal(t, scopeStatus{PubsubTopic: testPubsub, ContentTopic: testTopic, Count: 3,
		Root: hex.EncodeToString(stats.Root[:]), Newest: 1002}, st.Scopes[0])
}

func TestControlPutStampsNow(t *testing.T) {
	c := serveControl(t, newTestNode(t))
	before := time.Now().UnixNano()
	var put putResponse
	require.NoError(t, c.call(t.Context(), http.MethodPost, "/put", putRequest{ContentTopic: testTopic, Payloads: []string{"a", "b"}}, &put))
	require.Len(t, put.Added, 2)
	require.GreaterOrEqual(t, put.Added[0].Timestamp, before)
	require.Equal(t, put.Added[0].Timestamp+1, put.Added[1].Timestamp, "one nanosecond apart, in order")
}

func TestControlErrors(t *testing.T) {
	c := serveControl(t, newTestNode(t))
	cases := []struct {
		method, path, body string
		status             int
		says               string
	}{
		{"POST", "/v1/put", `{"content_topic": "/other", "payloads": ["x"]}`, 404,
			`scope not kept: content topic "/other" under pubsub topic "` + testPubsub + `" (this node keeps ` + testTopic + ` under it)`},
		{"POST", "/v1/put", `{"pubsub_topic": "/nowhere", "content_topic": "` + testTopic + `", "payloads": ["x"]}`, 404,
			`scope not kept: no scope kept under pubsub topic "/nowhere" (this node keeps scopes under ` + testPubsub + `)`},
		{"POST", "/v1/put", `{"content_topic": "` + testTopic + `", "payloads": ["x"], "timestamp": -1}`, 400, "timestamp"},
		{"POST", "/v1/put", `{"payloads": ["x"]}`, 400, "content_topic"},
		{"POST", "/v1/put", `not json`, 400, "body"},
		{"POST", "/v1/put", `{"content_topic": "` + testTopic + `", "payload": "x"}`, 400, "unknown field"},
		{"GET", "/v1/put", ``, 405, "use POST"},
		{"GET", "/v1/query?content_topic=/other", ``, 404, "/other"},
		{"GET", "/v1/query?pubsub_topic=/nowhere&content_topic=" + testTopic, ``, 404, `no scope kept under pubsub topic "/nowhere"`},
		{"GET", "/v1/query?content_topic=" + testTopic + "&after=zz", ``, 400, "cursor"},
		{"GET", "/v1/query?content_topic=" + testTopic + "&limit=-1", ``, 400, "limit"},
		{"GET", "/v1/query?content_topic=" + testTopic + "&from=x", ``, 400, "from"},
		{"POST", "/v1/sync", `{}`, 400, "peer is required"},
		{"POST", "/v1/sync", `{"peer": "nonsense"}`, 400, "neither a multiaddr nor a peer ID"},
		{"POST", "/v1/sync", `{"peer": "/ip4/127.0.0.1/tcp/1"}`, 400, "/p2p/"},
		{"POST", "/v1/sync", `{"peer": "12D3KooWBM39dKQBY5pmTMrG1rkTkURP6FeKwUdG4Y6t5XCFFJWo"}`, 400, "no address known"},
		{"POST", "/v1/sync", `{"peer": "12D3KooWBM39dKQBY5pmTMrG1rkTkURP6FeKwUdG4Y6t5XCFFJWo", "content_topics": ["/other"]}`, 404, "/other"},
		{"POST", "/v1/sync", `{"peer": "12D3KooWBM39dKQBY5pmTMrG1rkTkURP6FeKwUdG4Y6t5XCFFJWo", "pubsub_topic": "/nowhere"}`, 404,
			`no scope kept under pubsub topic "/nowhere"`},
		{"POST", "/v1/sync", `{"peer": "12D3KooWBM39dKQBY5pmTMrG1rkTkURP6FeKwUdG4Y6t5XCFFJWo", "pubsub_topic": "/nowhere", "content_topics": ["` + testTopic + `"]}`, 404,
			`no scope kept under pubsub topic "/nowhere"`},
		{"GET", "/v2/status", ``, 404, "no such endpoint"},
	}
	for _, tc := range cases {
		status, body := raw(t, c, tc.method, tc.path, tc.body)
		require.Equal(t, tc.status, status, "%s %s %s: %s", tc.method, tc.path, tc.body, body)
		var e errorBody
		require.NoError(t, json.Unmarshal([]byte(body), &e), body)
		require.Contains(t, e.Error, tc.says, "%s %s %s", tc.method, tc.path, tc.body)
	}
}

func TestControlSyncStreamsProgressAndReport(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	ca, cb := serveControl(t, a), serveControl(t, b)
	ctx := t.Context()
	payloads := make([]string, 3000)
	for i := range payloads {
		payloads[i] = "message " + string(rune('a'+i%26))
	}
	var put putResponse
	require.NoError(t, ca.call(ctx, http.MethodPost, "/put", putRequest{ContentTopic: testTopic, Payloads: payloads, Timestamp: 1}, &put))
	require.Len(t, put.Added, 3000)

	resp, err := cb.send(ctx, http.MethodPost, "/sync", syncRequest{Peer: a.Addrs()[0].String(), ContentTopics: []string{testTopic}})
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	var lines []syncLine
	dec := json.NewDecoder(resp.Body)
	for {
		var l syncLine
		if err := dec.Decode(&l); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		lines = append(lines, l)
	}
	require.GreaterOrEqual(t, len(lines), 2)
	last := lines[len(lines)-1]
	require.NotNil(t, last.Report, "%+v", last)
	require.Equal(t, a.Host().ID().String(), last.Report.Peer)
	require.Len(t, last.Report.Scopes, 1)
	sr := last.Report.Scopes[0]
	require.Equal(t, testTopic, sr.ContentTopic)
	require.Equal(t, 3000, sr.Received)
	require.Equal(t, 3000, sr.Streamed, "an empty scope is streamed")
	require.Zero(t, sr.Need)
	require.Empty(t, sr.Error)
	for _, l := range lines[:len(lines)-1] {
		require.NotNil(t, l.Progress)
		require.Equal(t, 3000, l.Progress.Total)
		require.Equal(t, "catch-up", l.Progress.Kind)
	}
	require.Equal(t, 3000, lines[len(lines)-2].Progress.Done, "the last progress is complete")

	// Now the peer is known by its ID alone, and the client shows the
	// answer as the sync command does.
	resp, err = cb.send(ctx, http.MethodPost, "/sync", syncRequest{Peer: a.Host().ID().String()})
	require.NoError(t, err)
	defer resp.Body.Close()
	var progress bytes.Buffer
	rep, err := readSyncStream(resp.Body, newProgressView(&progress, false, time.Now))
	require.NoError(t, err)
	require.Equal(t, 0, rep.Scopes[0].Received)
	var out bytes.Buffer
	require.NoError(t, printReport(&out, rep))
	require.Regexp(t, `^/demo/1/chat/proto: received 0, sent 0, need 0, have 0, rejected 0, 1 round trips, \d+ bytes, \S+\n$`, out.String())

	var st statusResponse
	require.NoError(t, cb.call(ctx, http.MethodGet, "/status", nil, &st))
	require.NotNil(t, st.Scopes[0].LastSync)
	require.Equal(t, a.Host().ID().String(), st.Scopes[0].LastSync.Peer)
}

func TestClientWithoutNode(t *testing.T) {
	dir := t.TempDir()
	_, err := newControlClient(dir)
	require.EqualError(t, err, "no node running with --data "+dir+" (start one with: storesync run --data "+dir+")")

	// A socket file nobody answers on, left by a node that died.
	path, err := socketPath(dir)
	require.NoError(t, err)
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, l.Close())
	c, err := newControlClient(dir)
	require.NoError(t, err)
	var st statusResponse
	err = c.call(t.Context(), http.MethodGet, "/status", nil, &st)
	require.ErrorContains(t, err, "no node running with --data "+dir)
}

func TestListenControlReplacesStaleSocketOnly(t *testing.T) {
	path, err := socketPath(t.TempDir())
	require.NoError(t, err)
	dead, err := net.Listen("unix", path)
	require.NoError(t, err)
	dead.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, dead.Close())
	require.FileExists(t, path)

	live, err := listenControl(path)
	require.NoError(t, err, "a stale socket is removed")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	_, err = listenControl(path)
	require.ErrorIs(t, err, errNodeRunning)
	require.NoError(t, live.Close())
	require.NoFileExists(t, path)
}

func TestSocketPathTooLong(t *testing.T) {
	_, err := socketPath("/" + strings.Repeat("d", 120))
	require.ErrorContains(t, err, "use a shorter --data")
}

const (
	otherPubsub = "/waku/2/rs/1/1"
	otherTopic  = "/demo/1/other/proto"
)

// newTwoPubsubNode starts a node keeping testTopic under testPubsub (the
// node's) and both testTopic and otherTopic under otherPubsub.
func newTwoPubsubNode(t *testing.T) *node.Node {
	t.Helper()
	return newTestNode(t, reconcile.Scope{PubsubTopic: otherPubsub, ContentTopic: testTopic},
		reconcile.Scope{PubsubTopic: otherPubsub, ContentTopic: otherTopic})
}

// payloads returns the payloads of a query's messages, in order.
func payloads(t *testing.T, c *controlClient, query string) []string {
	t.Helper()
	var page queryResponse
	require.NoError(t, c.call(t.Context(), http.MethodGet, "/query?"+query, nil, &page))
	out := []string{}
	for _, m := range page.Messages {
		out = append(out, m.Payload)
	}
	return out
}

// TestControlPubsubTopic: put and query reach a scope under a pubsub
// topic other than the node's when they name it, and the node's when
// they name none.
func TestControlPubsubTopic(t *testing.T) {
	n := newTwoPubsubNode(t)
	c := serveControl(t, n)
	ctx := t.Context()

	var put putResponse
	require.NoError(t, c.call(ctx, http.MethodPost, "/put",
		putRequest{PubsubTopic: otherPubsub, ContentTopic: testTopic, Payloads: []string{"other"}, Timestamp: 1000}, &put))
	require.Len(t, put.Added, 1)
	require.Equal(t, reconcile.MessageHash(otherPubsub, testTopic, []byte("other"), nil, 1000).String(), put.Added[0].Hash,
		"the message is in the scope under the pubsub topic asked for")
	require.NoError(t, c.call(ctx, http.MethodPost, "/put",
		putRequest{ContentTopic: testTopic, Payloads: []string{"own"}, Timestamp: 1000}, &put))
	require.Equal(t, reconcile.MessageHash(testPubsub, testTopic, []byte("own"), nil, 1000).String(), put.Added[0].Hash)

	require.Equal(t, []string{"other"}, payloads(t, c, "pubsub_topic="+otherPubsub+"&content_topic="+testTopic))
	require.Equal(t, []string{"own"}, payloads(t, c, "content_topic="+testTopic), "no pubsub topic: the node's")
	require.Equal(t, []string{"own"}, payloads(t, c, "pubsub_topic=&content_topic="+testTopic), "empty: the node's")
	require.Equal(t, []string{"own"}, payloads(t, c, "pubsub_topic="+testPubsub+"&content_topic="+testTopic))
	require.Empty(t, payloads(t, c, "pubsub_topic="+otherPubsub+"&content_topic="+otherTopic))

	var st statusResponse
	require.NoError(t, c.call(ctx, http.MethodGet, "/status", nil, &st))
	counts := map[string]uint64{}
	for _, sc := range st.Scopes {
		counts[sc.PubsubTopic+" "+sc.ContentTopic] = sc.Count
	}
	require.Equal(t, map[string]uint64{testPubsub + " " + testTopic: 1, otherPubsub + " " + testTopic: 1,
		otherPubsub + " " + otherTopic: 0}, counts)

	// A content topic missing under the asked pubsub topic lists those
	// kept under it, and only those.
	status, body := raw(t, c, "GET", "/v1/query?pubsub_topic="+otherPubsub+"&content_topic=/missing", "")
	require.Equal(t, http.StatusNotFound, status)
	require.JSONEq(t, `{"error": "scope not kept: content topic \"/missing\" under pubsub topic \"`+otherPubsub+
		`\" (this node keeps `+testTopic+`, `+otherTopic+` under it)"}`, body)
	status, body = raw(t, c, "POST", "/v1/put", `{"content_topic": "`+otherTopic+`", "payloads": ["x"]}`)
	require.Equal(t, http.StatusNotFound, status)
	require.JSONEq(t, `{"error": "scope not kept: content topic \"`+otherTopic+`\" under pubsub topic \"`+testPubsub+
		`\" (this node keeps `+testTopic+` under it)"}`, body, "kept under another pubsub topic only")
	status, body = raw(t, c, "POST", "/v1/put", `{"pubsub_topic": "/nowhere", "content_topic": "`+testTopic+`", "payloads": ["x"]}`)
	require.Equal(t, http.StatusNotFound, status)
	require.JSONEq(t, `{"error": "scope not kept: no scope kept under pubsub topic \"/nowhere\" (this node keeps scopes under `+
		testPubsub+`, `+otherPubsub+`)"}`, body)
}

// syncLines sends a sync request and returns the lines of its answer.
func syncLines(t *testing.T, c *controlClient, req syncRequest) []syncLine {
	t.Helper()
	resp, err := c.send(t.Context(), http.MethodPost, "/sync", req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var lines []syncLine
	dec := json.NewDecoder(resp.Body)
	for {
		var l syncLine
		if err := dec.Decode(&l); err == io.EOF {
			return lines
		} else {
			require.NoError(t, err)
		}
		lines = append(lines, l)
	}
}

// reportScopes returns "PUBSUB CONTENT: received N" per scope of the
// last line, the report.
func reportScopes(t *testing.T, lines []syncLine) []string {
	t.Helper()
	require.NotEmpty(t, lines)
	rep := lines[len(lines)-1].Report
	require.NotNil(t, rep, "%+v", lines[len(lines)-1])
	var out []string
	for _, s := range rep.Scopes {
		require.Empty(t, s.Error)
		out = append(out, fmt.Sprintf("%s %s: received %d", s.PubsubTopic, s.ContentTopic, s.Received))
	}
	return out
}

// TestControlSyncPubsubTopic: a sync naming a pubsub topic syncs the
// scopes under it alone, all of them without content topics, the named
// ones with; naming none syncs every kept scope as before.
func TestControlSyncPubsubTopic(t *testing.T) {
	a, b := newTwoPubsubNode(t), newTwoPubsubNode(t)
	ca, cb := serveControl(t, a), serveControl(t, b)
	ctx := t.Context()
	var put putResponse
	for _, r := range []putRequest{
		{ContentTopic: testTopic, Payloads: []string{"own"}},
		{PubsubTopic: otherPubsub, ContentTopic: testTopic, Payloads: []string{"other 1", "other 2"}},
		{PubsubTopic: otherPubsub, ContentTopic: otherTopic, Payloads: []string{"other 3"}},
	} {
		require.NoError(t, ca.call(ctx, http.MethodPost, "/put", r, &put))
		require.Len(t, put.Added, len(r.Payloads))
	}

	lines := syncLines(t, cb, syncRequest{Peer: a.Addrs()[0].String(), PubsubTopic: otherPubsub})
	require.ElementsMatch(t, []string{otherPubsub + " " + testTopic + ": received 2", otherPubsub + " " + otherTopic + ": received 1"},
		reportScopes(t, lines), "every scope under the pubsub topic, no other")
	progressed := map[string]bool{}
	for _, l := range lines[:len(lines)-1] {
		require.NotNil(t, l.Progress)
		progressed[l.Progress.PubsubTopic+" "+l.Progress.ContentTopic] = true
	}
	require.Equal(t, map[string]bool{otherPubsub + " " + testTopic: true, otherPubsub + " " + otherTopic: true}, progressed)
	require.Equal(t, []string{"other 1", "other 2"}, payloads(t, cb, "pubsub_topic="+otherPubsub+"&content_topic="+testTopic))
	require.Empty(t, payloads(t, cb, "content_topic="+testTopic), "the node's scope is left out")

	require.NoError(t, ca.call(ctx, http.MethodPost, "/put",
		putRequest{PubsubTopic: otherPubsub, ContentTopic: testTopic, Payloads: []string{"other 4"}}, &put))
	lines = syncLines(t, cb, syncRequest{Peer: a.Host().ID().String(), PubsubTopic: otherPubsub, ContentTopics: []string{testTopic}})
	require.Equal(t, []string{otherPubsub + " " + testTopic + ": received 1"}, reportScopes(t, lines))

	// Neither names every kept scope, whatever its pubsub topic.
	lines = syncLines(t, cb, syncRequest{Peer: a.Host().ID().String()})
	require.ElementsMatch(t, []string{testPubsub + " " + testTopic + ": received 1", otherPubsub + " " + testTopic + ": received 0",
		otherPubsub + " " + otherTopic + ": received 0"}, reportScopes(t, lines))
	var out bytes.Buffer
	require.NoError(t, printReport(&out, lines[len(lines)-1].Report))
	require.Len(t, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"), 3)
	for _, l := range []string{testTopic + " (" + testPubsub + "): received 1, ", testTopic + " (" + otherPubsub + "): received 0, ",
		otherTopic + " (" + otherPubsub + "): received 0, "} {
		require.Contains(t, out.String(), l, "a report over two pubsub topics names them")
	}
}
