package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// snapshotLines reads a whole export or import stream.
func snapshotLines[R any](t *testing.T, r io.Reader) []snapshotLine[R] {
	t.Helper()
	var out []snapshotLine[R]
	dec := json.NewDecoder(r)
	for {
		var l snapshotLine[R]
		err := dec.Decode(&l)
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, l)
	}
}

func TestControlExportImportStream(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	ca, cb := serveControl(t, a), serveControl(t, b)
	ctx := t.Context()
	payloads := make([]string, 2000)
	for i := range payloads {
		payloads[i] = strings.Repeat("x", i%50)
	}
	var put putResponse
	require.NoError(t, ca.call(ctx, http.MethodPost, "/put", putRequest{ContentTopic: testTopic, Payloads: payloads, Timestamp: 1}, &put))
	path := filepath.Join(t.TempDir(), "a.snap")

	resp, err := ca.send(ctx, http.MethodPost, "/export", exportRequest{ContentTopic: testTopic, Path: path})
	require.NoError(t, err)
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	lines := snapshotLines[exportReport](t, resp.Body)
	resp.Body.Close()
	last := lines[len(lines)-1]
	require.NotNil(t, last.Report, "%+v", last)
	sc := reconcile.Scope{PubsubTopic: testPubsub, ContentTopic: testTopic}
	stats, _ := a.Store().Stats(sc)
	require.Equal(t, uint64(2000), last.Report.Count)
	require.Equal(t, hex.EncodeToString(stats.Root[:]), last.Report.Root)
	require.Equal(t, testPubsub, last.Report.PubsubTopic, "the node's pubsub topic")
	for _, l := range lines[:len(lines)-1] {
		require.Equal(t, "export", l.Progress.Kind)
	}

	resp, err = cb.send(ctx, http.MethodPost, "/import", importRequest{Path: path})
	require.NoError(t, err)
	ilines := snapshotLines[importReport](t, resp.Body)
	resp.Body.Close()
	rep := ilines[len(ilines)-1].Report
	require.NotNil(t, rep, "%+v", ilines[len(ilines)-1])
	require.Equal(t, 2000, rep.Added)
	require.Equal(t, last.Report.Root, rep.Root)
	require.Equal(t, rep.Root, rep.ScopeRoot)
	var kinds []string
	for _, l := range ilines[:len(ilines)-1] {
		if len(kinds) == 0 || kinds[len(kinds)-1] != l.Progress.Kind {
			kinds = append(kinds, l.Progress.Kind)
		}
	}
	// b keeps the scope with no message: one pass, verified as stored.
	require.Equal(t, []string{"import"}, kinds, "every phase shows, in order")

	// The client shows it as the command does; into the scope that now
	// holds the messages, the import verifies the file first.
	var progress bytes.Buffer
	view := newSnapshotView(&progress, false, time.Now)
	got, err := callSnapshot[importReport](ctx, cb, "/import", importRequest{Path: path}, view)
	require.NoError(t, err)
	view.finish()
	require.Equal(t, 2000, got.Duplicates)
	require.Contains(t, progress.String(), "verifying the file")
	require.Contains(t, progress.String(), "storing "+testTopic)
	require.Contains(t, progress.String(), "progress: 2000/2000 messages", "a phase ends with its final state")

	// A bad file: the reader's error on the stream's last line.
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	bad := filepath.Join(t.TempDir(), "bad.snap")
	require.NoError(t, os.WriteFile(bad, raw[:len(raw)-1], 0o644))
	_, err = callSnapshot[importReport](ctx, cb, "/import", importRequest{Path: bad}, newSnapshotView(io.Discard, false, time.Now))
	require.ErrorContains(t, err, "import "+bad+": snapshot: truncated")
}

func TestControlSnapshotErrors(t *testing.T) {
	c := serveControl(t, newTestNode(t))
	abs := filepath.Join(t.TempDir(), "x.snap")
	cases := []struct {
		path, body string
		status     int
		says       string
	}{
		{"/v1/export", `{"content_topic": "` + testTopic + `", "path": "rel.snap"}`, 400, "not absolute"},
		{"/v1/export", `{"content_topic": "` + testTopic + `"}`, 400, "path is required"},
		{"/v1/export", `{"content_topic": "/other", "path": "` + abs + `"}`, 404, `content topic "/other"`},
		{"/v1/export", `{"pubsub_topic": "/nowhere", "content_topic": "` + testTopic + `", "path": "` + abs + `"}`, 404, "/nowhere"},
		{"/v1/import", `{"path": "rel.snap"}`, 400, "not absolute"},
		{"/v1/import", `{"path": "` + abs + `"}`, 400, "not a file the node can read"},
		{"/v1/import", `{"path": "` + abs + `", "scope": 1}`, 400, "unknown field"},
	}
	for _, tc := range cases {
		status, body := raw(t, c, http.MethodPost, tc.path, tc.body)
		require.Equal(t, tc.status, status, "%s %s: %s", tc.path, tc.body, body)
		var e errorBody
		require.NoError(t, json.Unmarshal([]byte(body), &e), body)
		require.Contains(t, e.Error, tc.says, "%s %s", tc.path, tc.body)
	}
	status, _ := raw(t, c, http.MethodGet, "/v1/import", "")
	require.Equal(t, http.StatusMethodNotAllowed, status)
	require.NoFileExists(t, abs)
}

func TestPhasePumpKeepsEveryPhase(t *testing.T) {
	sc := reconcile.Scope{PubsubTopic: "/p", ContentTopic: "/a"}
	p := newPhasePump()
	// Noted before the writer runs: the latest of each phase is left,
	// phases in order, and note never blocked.
	for i := range 50 {
		p.note(protocol.Progress{Kind: node.ProgressVerify, Scope: sc, Done: i})
	}
	for i := range 50 {
		p.note(protocol.Progress{Kind: protocol.ProgressImport, Scope: sc, Done: i})
	}
	p.close()
	var got []protocol.Progress
	p.run(func(pr protocol.Progress) { got = append(got, pr) })
	require.Equal(t, []protocol.Progress{
		{Kind: node.ProgressVerify, Scope: sc, Done: 49},
		{Kind: protocol.ProgressImport, Scope: sc, Done: 49},
	}, got)
}

func TestHelpListsSnapshotCommands(t *testing.T) {
	var out bytes.Buffer
	code := dispatch(t.Context(), []string{"help"}, stdio{in: strings.NewReader(""), out: &out, err: io.Discard})
	require.Equal(t, 0, code)
	require.Regexp(t, `(?m)^  export +write a scope to a snapshot file$`, out.String())
	require.Regexp(t, `(?m)^  import +store the messages of a snapshot file$`, out.String())
	for _, args := range [][]string{{"export"}, {"import"}, {"import", "a", "b"}} {
		var errOut bytes.Buffer
		code := dispatch(t.Context(), append(args, "--data", t.TempDir()), stdio{in: strings.NewReader(""), out: io.Discard, err: &errOut})
		require.Equal(t, 2, code, "%v: %s", args, errOut.String())
	}
}
