package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

// The tests in this file drive the built command the way a user does.

const cliTopic = "/demo/1/chat/proto"

var (
	buildOnce sync.Once
	binDir    string
	binErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// storesyncBinary builds the command once per test run, with the race
// detector if the tests run with it, and returns its path.
func storesyncBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the command")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with")
	}
	buildOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "storesync-cli-"); binErr != nil {
			return
		}
		args := []string{"build", "-o", filepath.Join(binDir, "storesync")}
		if raceEnabled() {
			args = append(args, "-race")
		}
		out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput()
		if err != nil {
			binErr = &buildError{err: err, out: string(out)}
		}
	})
	require.NoError(t, binErr)
	return filepath.Join(binDir, "storesync")
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// commandEnv is the environment of the commands a test runs. A race
// build waits a second at exit for the detector's reports to be written;
// the commands' own exit codes show any race (66), so they need not wait.
func commandEnv() []string {
	env := os.Environ()
	if raceEnabled() {
		env = append(env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	return env
}

// lockedBuffer collects a process's output, written from another
// goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// nodeProc is a running `storesync run`.
type nodeProc struct {
	cmd    *exec.Cmd
	dir    string
	addrs  []string // from its listening: lines
	peerID string
	stderr lockedBuffer
	done   chan struct{} // closed when it has exited
}

// startNode runs a node on dir listening on 127.0.0.1 and waits until it
// is ready; args replace the default --content-topic flag. The node is
// killed at the end of the test if it still runs.
func startNode(t *testing.T, bin, dir string, args ...string) *nodeProc {
	t.Helper()
	p := &nodeProc{dir: dir, done: make(chan struct{})}
	if len(args) == 0 {
		args = []string{"--content-topic", cliTopic}
	}
	p.cmd = exec.Command(bin, append([]string{"run", "--data", dir, "--listen", "/ip4/127.0.0.1/tcp/0"}, args...)...)
	p.cmd.Env = commandEnv()
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})

	ready := make(chan struct{})
	var mu sync.Mutex
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			switch {
			case strings.HasPrefix(line, "listening: "):
				p.addrs = append(p.addrs, strings.TrimPrefix(line, "listening: "))
			case strings.HasPrefix(line, "peer id: "):
				p.peerID = strings.TrimPrefix(line, "peer id: ")
			case line == "ready":
				close(ready)
			}
			mu.Unlock()
		}
		_ = p.cmd.Wait() // only once stdout is drained, as Wait requires
	}()
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("node on %s exited before it was ready: %s", dir, p.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("node on %s not ready in time: %s", dir, p.stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, p.addrs)
	require.NotEmpty(t, p.peerID)
	for _, a := range p.addrs {
		require.True(t, strings.HasSuffix(a, "/p2p/"+p.peerID), a)
	}
	return p
}

// stop sends SIGTERM and checks that the node exits 0 and removes its
// control socket.
func (p *nodeProc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("node on %s did not stop: %s", p.dir, p.stderr.String())
	}
	require.Equal(t, 0, p.cmd.ProcessState.ExitCode(), p.stderr.String())
	require.NoFileExists(t, filepath.Join(p.dir, "control.sock"))
}

// cli runs the command to completion with stdin as its input.
func cli(t *testing.T, bin, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = commandEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("storesync %v: %v", args, err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

var (
	hashLine    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	messageLine = regexp.MustCompile(`^(\S+)  ([0-9a-f]{16})  (.*)$`)
)

func TestCLITwoNodesSync(t *testing.T) {
	bin := storesyncBinary(t)
	tmp := t.TempDir()
	a := startNode(t, bin, filepath.Join(tmp, "a"))
	b := startNode(t, bin, filepath.Join(tmp, "b"))

	out, errOut, code := cli(t, bin, "", "put", "--data", a.dir, "--content-topic", cliTopic, "--payload", "hello 1")
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, hashLine, strings.TrimSpace(out))
	out, errOut, code = cli(t, bin, "hello 2\nhello 3\n", "put", "--data", a.dir, "--content-topic", cliTopic)
	require.Equal(t, 0, code, errOut)
	hashes := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, hashes, 2)
	for _, h := range hashes {
		require.Regexp(t, hashLine, h)
	}

	_, errOut, code = cli(t, bin, "", "run", "--data", a.dir, "--listen", "/ip4/127.0.0.1/tcp/0")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "a node is already running with --data "+a.dir)

	// The peer may come before the flags.
	out, errOut, code = cli(t, bin, "", "sync", a.addrs[0], "--data", b.dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, cliTopic+": received 3, sent 0, need 0, have 0, rejected 0, streamed 3, ", "an empty scope is streamed")
	require.Contains(t, errOut, "progress: 3/3 messages", "no terminal: plain progress lines")
	require.NotContains(t, errOut, "\r")

	out, errOut, code = cli(t, bin, "", "query", "--data", b.dir, "--content-topic", cliTopic)
	require.Equal(t, 0, code, errOut)
	var payloads []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		m := messageLine.FindStringSubmatch(l)
		require.NotNil(t, m, l)
		_, err := time.Parse(time.RFC3339Nano, m[1])
		require.NoError(t, err)
		payloads = append(payloads, m[3])
	}
	require.Equal(t, []string{"hello 1", "hello 2", "hello 3"}, payloads)
	require.Empty(t, errOut, "one page holds them all")

	out, errOut, code = cli(t, bin, "", "query", "--data", b.dir, "--content-topic", cliTopic, "--limit", "2")
	require.Equal(t, 0, code, errOut)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 2)
	cursor, ok := strings.CutPrefix(strings.TrimSpace(errOut), "more: --after ")
	require.True(t, ok, errOut)
	out, _, code = cli(t, bin, "", "query", "--data", b.dir, "--content-topic", cliTopic, "--after", cursor)
	require.Equal(t, 0, code)
	require.True(t, strings.HasSuffix(strings.TrimSpace(out), "  hello 3"), out)

	statusA, statusB := status(t, bin, a.dir), status(t, bin, b.dir)
	require.Len(t, statusA.Scopes, 1)
	require.Len(t, statusB.Scopes, 1)
	require.Equal(t, uint64(3), statusA.Scopes[0].Count)
	require.Equal(t, statusA.Scopes[0].Count, statusB.Scopes[0].Count)
	require.Regexp(t, `^[0-9a-f]{32}$`, statusA.Scopes[0].Root)
	require.Equal(t, statusA.Scopes[0].Root, statusB.Scopes[0].Root)
	require.Equal(t, cliTopic, statusB.Scopes[0].ContentTopic)
	require.Equal(t, defaultPubsubTopic, statusB.Scopes[0].PubsubTopic)
	require.Equal(t, a.peerID, statusB.Scopes[0].LastSync.Peer)

	a.stop(t)
	b.stop(t)
}

func status(t *testing.T, bin, dir string) statusResponse {
	t.Helper()
	out, errOut, code := cli(t, bin, "", "status", "--data", dir, "--json")
	require.Equal(t, 0, code, errOut)
	var st statusResponse
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	return st
}

func TestCLIPutWithoutNode(t *testing.T) {
	bin := storesyncBinary(t)
	dir := filepath.Join(t.TempDir(), "none")
	_, errOut, code := cli(t, bin, "", "put", "--data", dir, "--content-topic", cliTopic, "--payload", "x")
	require.Equal(t, 1, code)
	require.Equal(t, "storesync put: no node running with --data "+dir+" (start one with: storesync run --data "+dir+")\n", errOut)
}

func TestHelpListsCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	code := dispatch(t.Context(), []string{"help"}, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	require.Equal(t, 0, code)
	for _, c := range []string{"run", "put", "query", "status", "sync", "hash"} {
		require.Regexp(t, `(?m)^  `+c+` +\S`, out.String())
	}
}

// TestCLIGroupSyncsByGossip: two nodes in a sync group converge without a
// sync command, status shows the group and its member, and a group sync
// on demand names the member it synced with.
func TestCLIGroupSyncsByGossip(t *testing.T) {
	bin := storesyncBinary(t)
	group := []string{"--group", "demo", "--content-topic", cliTopic, "--gossip-interval", "500ms"}
	a := startNode(t, bin, t.TempDir(), group...)
	b := startNode(t, bin, t.TempDir(), append(group, "--peer", a.addrs[0])...)
	_, errOut, code := cli(t, bin, "", "put", "--data", a.dir, "--content-topic", cliTopic, "--payload", "by gossip")
	require.Equal(t, 0, code, errOut)
	require.Eventually(t, func() bool {
		out, _, code := cli(t, bin, "", "query", "--data", b.dir, "--content-topic", cliTopic)
		return code == 0 && strings.Contains(out, "by gossip")
	}, 15*time.Second, 100*time.Millisecond)

	st := status(t, bin, b.dir)
	require.Len(t, st.Groups, 1)
	require.Equal(t, "demo", st.Groups[0].Name)
	require.Equal(t, []string{cliTopic}, st.Groups[0].ContentTopics)
	var members []string
	for _, m := range st.Groups[0].Members {
		members = append(members, m.Peer)
	}
	require.Contains(t, members, a.peerID)

	out, errOut, code := cli(t, bin, "", "sync", "--data", b.dir, "--group", "demo")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "group demo: synced with "+a.peerID)
	readable, _, code := cli(t, bin, "", "status", "--data", b.dir)
	require.Equal(t, 0, code)
	require.Contains(t, readable, "group demo ("+cliTopic+")")
	a.stop(t)
	b.stop(t)
}

// TestCLIPubsubTopics: put, query and sync reach a scope kept under a
// pubsub topic other than the node's with --pubsub-topic, and the node's
// without it. The nodes keep /a/1/x/proto under two pubsub topics: a
// first run keeps it under rs/1/0, and the store keeps that scope when
// the node runs again under rs/1/1.
func TestCLIPubsubTopics(t *testing.T) {
	const (
		old, cur = "/waku/2/rs/1/0", "/waku/2/rs/1/1"
		ct       = "/a/1/x/proto"
	)
	bin := storesyncBinary(t)
	tmp := t.TempDir()
	var nodes []*nodeProc
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(tmp, name)
		startNode(t, bin, dir, "--pubsub-topic", old, "--content-topic", ct).stop(t)
		nodes = append(nodes, startNode(t, bin, dir, "--pubsub-topic", cur, "--content-topic", ct))
	}
	a, b := nodes[0], nodes[1]

	_, errOut, code := cli(t, bin, "", "put", "--data", a.dir, "--pubsub-topic", old, "--content-topic", ct, "--payload", "under rs/1/0")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = cli(t, bin, "", "put", "--data", a.dir, "--content-topic", ct, "--payload", "under rs/1/1")
	require.Equal(t, 0, code, errOut)

	var last []queryMessage
	query := func(dir string, args ...string) []string {
		t.Helper()
		out, errOut, code := cli(t, bin, "", append([]string{"query", "--data", dir, "--json", "--content-topic", ct}, args...)...)
		require.Equal(t, 0, code, errOut)
		last = nil
		payloads := []string{}
		for l := range strings.Lines(out) {
			var m queryMessage
			require.NoError(t, json.Unmarshal([]byte(l), &m), l)
			last, payloads = append(last, m), append(payloads, m.Payload)
		}
		return payloads
	}
	require.Equal(t, []string{"under rs/1/0"}, query(a.dir, "--pubsub-topic", old))
	// The message hash covers the pubsub topic: the put went to rs/1/0.
	require.Equal(t, reconcile.MessageHash(old, ct, []byte("under rs/1/0"), nil, last[0].Timestamp).String(), last[0].Hash)
	require.Equal(t, []string{"under rs/1/1"}, query(a.dir), "no --pubsub-topic: the node's")

	readable, errOut, code := cli(t, bin, "", "status", "--data", a.dir)
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `(?m)^/a/1/x/proto +1 .*  /waku/2/rs/1/0$`, readable)
	require.Regexp(t, `(?m)^/a/1/x/proto +1 .*  /waku/2/rs/1/1$`, readable)

	// An unknown pubsub topic fails with the pubsub topics kept.
	for _, args := range [][]string{
		{"put", "--data", a.dir, "--pubsub-topic", "/waku/2/rs/9/9", "--content-topic", ct, "--payload", "x"},
		{"query", "--data", a.dir, "--pubsub-topic", "/waku/2/rs/9/9", "--content-topic", ct},
		{"sync", "--data", b.dir, "--pubsub-topic", "/waku/2/rs/9/9", a.addrs[0]},
	} {
		out, errOut, code := cli(t, bin, "", args...)
		require.Equal(t, 1, code, "%v: %s", args, errOut)
		require.Empty(t, out)
		require.Equal(t, "storesync "+args[0]+`: scope not kept: no scope kept under pubsub topic "/waku/2/rs/9/9"`+
			" (this node keeps scopes under /waku/2/rs/1/0, /waku/2/rs/1/1)\n", errOut)
	}
	_, errOut, code = cli(t, bin, "", "query", "--data", a.dir, "--pubsub-topic", old, "--content-topic", "/a/1/y/proto")
	require.Equal(t, 1, code)
	require.Equal(t, `storesync query: scope not kept: content topic "/a/1/y/proto" under pubsub topic "/waku/2/rs/1/0"`+
		" (this node keeps /a/1/x/proto under it)\n", errOut)

	out, errOut, code := cli(t, bin, "", "sync", "--data", b.dir, "--pubsub-topic", old, a.addrs[0])
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `^/a/1/x/proto: received 1, sent 0, need 0, have 0, rejected 0, streamed 1, [^\n]*\n$`, out, "the scope under rs/1/0 alone")
	require.Equal(t, []string{"under rs/1/0"}, query(b.dir, "--pubsub-topic", old))
	require.Empty(t, query(b.dir), "the node's own scope is not synced")

	// Without flags, sync takes every kept scope, as before; its report
	// names the pubsub topics, which differ.
	out, errOut, code = cli(t, bin, "", "sync", "--data", b.dir, a.addrs[0])
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "/a/1/x/proto (/waku/2/rs/1/0): received 0, ")
	require.Contains(t, out, "/a/1/x/proto (/waku/2/rs/1/1): received 1, ")
	require.Equal(t, []string{"under rs/1/1"}, query(b.dir))

	a.stop(t)
	b.stop(t)
}

func TestPubsubTopicFlagUsage(t *testing.T) {
	for _, args := range [][]string{
		{"put", "--pubsub-topic", "", "--payload", "x"},
		{"query", "--pubsub-topic", ""},
		{"sync", "--pubsub-topic", "", "12D3KooWBM39dKQBY5pmTMrG1rkTkURP6FeKwUdG4Y6t5XCFFJWo"},
		{"sync", "--group", "demo", "--pubsub-topic", "/waku/2/rs/1/0"},
	} {
		var out, errOut bytes.Buffer
		code := dispatch(t.Context(), append(args, "--data", t.TempDir()), stdio{in: strings.NewReader(""), out: &out, err: &errOut})
		require.Equal(t, 2, code, "%v: %s", args, errOut.String())
		require.Contains(t, errOut.String(), "pubsub", args)
	}
}
