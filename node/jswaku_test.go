package node_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol/waku"
	"github.com/storesync/storesync/reconcile"
)

// These tests run js-waku, the Waku client from npm, against a node: the
// scripts in testdata/jswaku. They need Node.js 20 or newer and npm, and
// install the pinned packages with npm ci when node_modules is missing.

const (
	jsWakuDir = "testdata/jswaku"
	// jsContentTopic is on shard 4 of js-waku's default network, cluster 1
	// with 8 shards.
	jsContentTopic = "/jswaku/1/feasibility/proto"
	// jsWakuPageSize is js-waku's page size when a query sets none, which
	// is the server's default too.
	jsWakuPageSize = 20
)

// jsWakuScope is jsContentTopic on its autosharded pubsub topic, and
// jsOtherScope another content topic on the same pubsub topic.
var jsWakuScope, jsOtherScope = func() (reconcile.Scope, reconcile.Scope) {
	shard, err := waku.AutoShard(jsContentTopic, 1, 8)
	if err != nil {
		panic(err)
	}
	return reconcile.Scope{PubsubTopic: shard.PubsubTopic(), ContentTopic: jsContentTopic},
		reconcile.Scope{PubsubTopic: shard.PubsubTopic(), ContentTopic: "/jswaku/1/other/proto"}
}()

var (
	npmOnce sync.Once
	npmErr  string
)

// needJSWaku returns the path of node, installing the scripts' packages
// with npm ci first if they are missing or older than the lock file. It
// fails the test, never skips it, when Node.js or npm is missing.
func needJSWaku(t *testing.T) string {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the js-waku tests need Node.js 20 or newer on PATH (and npm): %v", err)
	}
	npmOnce.Do(func() { npmErr = installJSWaku() })
	if npmErr != "" {
		t.Fatal(npmErr)
	}
	return nodeBin
}

func installJSWaku() string {
	lock, err := os.Stat(filepath.Join(jsWakuDir, "package-lock.json"))
	if err != nil {
		return err.Error()
	}
	installed, err := os.Stat(filepath.Join(jsWakuDir, "node_modules", ".package-lock.json"))
	if err == nil && !installed.ModTime().Before(lock.ModTime()) {
		return ""
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "the js-waku tests need npm on PATH to install " + jsWakuDir + ": " + err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = jsWakuDir
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "npm ci in " + jsWakuDir + ": " + err.Error() + "\n" + string(out)
	}
	return ""
}

// jsRun is a script of testdata/jswaku running with its stdin open.
type jsRun struct {
	script         string
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr bytes.Buffer
	began          time.Time
	done           chan struct{} // closed when the script has exited
	err            error         // its exit, once done is closed
	cancel         context.CancelFunc
}

// startJS starts a script of testdata/jswaku with the
// Promise.withResolvers polyfill; it is killed after timeout.
func startJS(t *testing.T, timeout time.Duration, script string, args ...string) *jsRun {
	t.Helper()
	nodeBin := needJSWaku(t)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	r := &jsRun{script: script, began: time.Now(), done: make(chan struct{}), cancel: cancel}
	r.cmd = exec.CommandContext(ctx, nodeBin, append([]string{"--import", "./polyfill.mjs", script}, args...)...)
	r.cmd.Dir = jsWakuDir
	r.cmd.WaitDelay = 5 * time.Second
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	var err error
	r.stdin, err = r.cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, r.cmd.Start())
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() { r.cancel(); <-r.done })
	return r
}

// exited reports whether the script has ended.
func (r *jsRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// finish closes the script's stdin, waits for it to exit and returns its
// stdout lines; it fails the test with the script's stderr if it exits
// non-zero or is killed.
func (r *jsRun) finish(t *testing.T) []string {
	t.Helper()
	_ = r.stdin.Close()
	<-r.done
	r.cancel()
	t.Logf("%s: %v", r.script, time.Since(r.began).Round(time.Millisecond))
	require.NoError(t, r.err, "%s failed\nstderr:\n%s\nstdout:\n%s", r.script, r.stderr.String(), r.stdout.String())
	var lines []string
	sc := bufio.NewScanner(&r.stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// runJS runs a script of testdata/jswaku to its end with stdin closed.
func runJS(t *testing.T, timeout time.Duration, script string, args ...string) []string {
	t.Helper()
	return startJS(t, timeout, script, args...).finish(t)
}

// jsMessage is a line of store_query.mjs: a message as js-waku decoded it.
type jsMessage struct {
	Hash         string `json:"hash"`
	PubsubTopic  string `json:"pubsubTopic"`
	ContentTopic string `json:"contentTopic"`
	Timestamp    string `json:"timestamp"`
	Payload      string `json:"payload"`
	Meta         string `json:"meta"`
}

type jsSummary struct {
	Messages int `json:"messages"`
	Pages    int `json:"pages"`
}

// asJS returns m as store_query.mjs prints it, with our hash.
func asJS(m reconcile.Message) jsMessage {
	h := m.Hash()
	return jsMessage{Hash: hex.EncodeToString(h[:]), PubsubTopic: m.PubsubTopic, ContentTopic: m.ContentTopic,
		Timestamp: strconv.FormatInt(m.Timestamp, 10), Payload: hex.EncodeToString(m.Payload),
		Meta: hex.EncodeToString(m.Meta)}
}

// jsStoreQuery runs store_query.mjs against n and returns the messages in
// the order js-waku yielded them, and its summary.
func jsStoreQuery(t *testing.T, n *node.Node, args ...string) ([]jsMessage, jsSummary) {
	t.Helper()
	lines := runJS(t, 60*time.Second, "store_query.mjs", append([]string{wsAddr(t, n), jsContentTopic}, args...)...)
	require.NotEmpty(t, lines, "store_query.mjs printed nothing")
	var got []jsMessage
	for _, l := range lines[:len(lines)-1] {
		var m jsMessage
		dec := json.NewDecoder(bytes.NewReader([]byte(l)))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&m), "line %q", l)
		got = append(got, m)
	}
	var sum struct{ Summary *jsSummary }
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &sum), "summary %q", lines[len(lines)-1])
	require.NotNil(t, sum.Summary, "last line %q is the summary", lines[len(lines)-1])
	return got, *sum.Summary
}

// startJSWakuNode starts a node as a js-waku client finds it: LevelDB,
// TCP and websocket listeners, mplex, metadata of cluster 1, Store v3.
func startJSWakuNode(t *testing.T, opts ...node.Option) *node.Node {
	t.Helper()
	n, err := node.New(t.Context(), append([]node.Option{node.WithDataDir(t.TempDir()),
		node.WithListenAddrs("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0/ws"),
		node.WithMplex(true), node.WithWakuMetadata(1), node.WithWakuStore(),
		node.WithScopes(jsWakuScope, jsOtherScope)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}

// wsAddr returns n's loopback websocket address with its peer ID.
func wsAddr(t *testing.T, n *node.Node) string {
	t.Helper()
	for _, a := range n.Host().Addrs() {
		if _, err := a.ValueForProtocol(ma.P_WS); err == nil {
			return a.String() + "/p2p/" + n.Host().ID().String()
		}
	}
	t.Fatalf("no websocket address among %v", n.Host().Addrs())
	return ""
}

// TestJSWakuReadsTheStore: js-waku's store query, paging with its default
// page size, gets exactly the messages of its content topic, in Store v3
// order (timestamp, then hash), each with the hash we give it, with
// nanosecond timestamps, meta and payload intact.
func TestJSWakuReadsTheStore(t *testing.T) {
	n := startJSWakuNode(t)
	base := time.Now().Add(-10 * time.Minute).UnixNano()
	var want, others []reconcile.Message
	for i := range 300 {
		// Three messages to a timestamp, so that ties are ordered by hash;
		// timestamps off the millisecond, which js-waku's Date would lose.
		m := msg(jsWakuScope, base+int64(i/3)*1_000_777, uint64(i))
		if i%5 == 0 {
			m.Meta = []byte{byte(i), 0xee}
		}
		want = append(want, m)
	}
	for i := range 40 {
		others = append(others, msg(jsOtherScope, base+int64(i)*3_000_001, uint64(i)))
	}
	_, err := n.Put(t.Context(), append(slices.Clone(want), others...)...)
	require.NoError(t, err)
	slices.SortFunc(want, func(a, b reconcile.Message) int { return a.Key().Compare(b.Key()) })
	wantJS := make([]jsMessage, len(want))
	for i, m := range want {
		wantJS[i] = asJS(m)
	}

	got, sum := jsStoreQuery(t, n)
	require.Equal(t, wantJS, got)
	require.Equal(t, jsSummary{Messages: len(want), Pages: len(want) / jsWakuPageSize}, sum)

	// A page size of js-waku's choosing, not dividing the count.
	got, sum = jsStoreQuery(t, n, "--page-size", "7")
	require.Equal(t, wantJS, got)
	require.Equal(t, jsSummary{Messages: len(want), Pages: (len(want) + 6) / 7}, sum)
}

// jsPublished is a line of relay_publish.mjs: a message js-waku sent.
type jsPublished struct {
	Hash        string `json:"hash"`
	PubsubTopic string `json:"pubsubTopic"`
	Timestamp   string `json:"timestamp"`
	Payload     string `json:"payload"`
	Recipients  int    `json:"recipients"`
}

// keptMessages returns every message n keeps in sc, in key order.
func keptMessages(t *testing.T, n *node.Node, sc reconcile.Scope) []reconcile.Message {
	t.Helper()
	var out []reconcile.Message
	q := node.Query{Scope: sc, Limit: node.MaxQueryLimit}
	for {
		p, err := n.Query(t.Context(), q)
		require.NoError(t, err)
		out = append(out, p.Messages...)
		if !p.More {
			return out
		}
		q.After = p.Next
	}
}

// TestJSWakuRelayIsStored: messages js-waku publishes over Waku Relay are
// stored by the node, each under the hash js-waku gives it and with its
// payload and timestamp, and js-waku's store query then returns them.
func TestJSWakuRelayIsStored(t *testing.T) {
	n := startJSWakuNode(t, node.WithRelay())
	const count = 30
	run := startJS(t, 60*time.Second, "relay_publish.mjs", wsAddr(t, n), jsContentTopic, strconv.Itoa(count))
	// The script stays connected until stdin closes, so that nothing it
	// has queued is lost: wait for the node to hold count messages first.
	var stored []jsMessage
	for deadline := time.Now().Add(15 * time.Second); len(stored) < count && !run.exited() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		stored = stored[:0]
		for _, m := range keptMessages(t, n, jsWakuScope) {
			stored = append(stored, asJS(m))
		}
	}
	lines := run.finish(t)
	require.Len(t, lines, count+1, "a line per message and the summary")
	require.JSONEq(t, `{"summary":{"published":30}}`, lines[count])
	var sent []jsMessage
	for _, l := range lines[:count] {
		var p jsPublished
		dec := json.NewDecoder(bytes.NewReader([]byte(l)))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&p), "line %q", l)
		require.Equal(t, jsWakuScope.PubsubTopic, p.PubsubTopic, "js-waku's autosharding agrees with ours")
		require.Equal(t, 1, p.Recipients, "the node is js-waku's one relay peer")
		sent = append(sent, jsMessage{Hash: p.Hash, PubsubTopic: p.PubsubTopic, ContentTopic: jsContentTopic,
			Timestamp: p.Timestamp, Payload: p.Payload})
	}
	slices.SortFunc(sent, func(a, b jsMessage) int {
		ta, _ := strconv.ParseInt(a.Timestamp, 10, 64)
		tb, _ := strconv.ParseInt(b.Timestamp, 10, 64)
		return cmp.Or(cmp.Compare(ta, tb), strings.Compare(a.Hash, b.Hash))
	})

	require.Equal(t, sent, stored, "the node stores what js-waku relayed")
	require.Empty(t, keptMessages(t, n, jsOtherScope))

	got, sum := jsStoreQuery(t, n)
	require.Equal(t, sent, got)
	require.Equal(t, jsSummary{Messages: count, Pages: (count + jsWakuPageSize - 1) / jsWakuPageSize}, sum)
}
