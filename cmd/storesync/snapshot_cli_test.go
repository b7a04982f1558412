package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

var (
	exportLine = regexp.MustCompile(`^exported (\d+) messages of (\S+) \((\S+)\) to (\S+): root ([0-9a-f]{32}), .+\n$`)
	importLine = regexp.MustCompile(`^imported (\d+) messages of \S+ \(\S+\) from \S+: added (\d+), duplicates (\d+), rejected (\d+)(, resumed at batch (\d+) of \d+ \((\d+) messages stored before\))?; root ([0-9a-f]{32}) verified; the scope now holds (\d+) messages, root ([0-9a-f]{32})\n$`)
)

// exported runs an export and returns the root it printed.
func exported(t *testing.T, bin string, args ...string) (root string) {
	t.Helper()
	out, errOut, code := cli(t, bin, "", append([]string{"export"}, args...)...)
	require.Equal(t, 0, code, errOut)
	m := exportLine.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.Contains(t, errOut, "exporting "+m[2]+" ("+m[3]+")")
	return m[5]
}

// imported runs an import and returns the figures of its summary:
// count, added, duplicates, rejected, resumed-at batch (-1 if not
// resumed) and the messages stored before it, and the file's and the
// scope's roots.
type importSummary struct {
	count, added, duplicates, rejected, resumedAt, storedBefore int
	root, scopeRoot                                             string
	scopeCount                                                  int
}

func parseImport(t *testing.T, out string) importSummary {
	t.Helper()
	m := importLine.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	n := func(s string) int {
		v, err := strconv.Atoi(s)
		require.NoError(t, err)
		return v
	}
	s := importSummary{count: n(m[1]), added: n(m[2]), duplicates: n(m[3]), rejected: n(m[4]), resumedAt: -1,
		root: m[8], scopeCount: n(m[9]), scopeRoot: m[10]}
	if m[5] != "" {
		s.resumedAt, s.storedBefore = n(m[6]), n(m[7])
	}
	return s
}

func imported(t *testing.T, bin string, args ...string) importSummary {
	t.Helper()
	out, errOut, code := cli(t, bin, "", append([]string{"import"}, args...)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "storing ")
	return parseImport(t, out)
}

// TestCLIExportImport: export and import through running nodes and
// without one, with the same roots everywhere; bad files fail with the
// reader's error either way and store nothing.
func TestCLIExportImport(t *testing.T) {
	bin := storesyncBinary(t)
	tmp := t.TempDir()
	a := startNode(t, bin, filepath.Join(tmp, "a"))
	lines := make([]string, 300)
	for i := range lines {
		lines[i] = fmt.Sprintf("message %d", i)
	}
	_, errOut, code := cli(t, bin, strings.Join(lines, "\n"), "put", "--data", a.dir, "--content-topic", cliTopic)
	require.Equal(t, 0, code, errOut)
	root := status(t, bin, a.dir).Scopes[0].Root

	// Through the node; a relative --out is the client's.
	viaNode := filepath.Join(tmp, "via-node.snap")
	rel, err := filepath.Rel(mustGetwd(t), viaNode)
	require.NoError(t, err)
	require.Equal(t, root, exported(t, bin, "--data", a.dir, "--content-topic", cliTopic, "--out", rel))
	require.FileExists(t, viaNode)

	b := startNode(t, bin, filepath.Join(tmp, "b"), "--content-topic", "/other/1/x/proto")
	got := imported(t, bin, "--data", b.dir, viaNode)
	require.Equal(t, importSummary{count: 300, added: 300, resumedAt: -1, root: root, scopeCount: 300, scopeRoot: root}, got)
	stB := status(t, bin, b.dir)
	require.Len(t, stB.Scopes, 2, "the file's scope is kept beside the node's own")
	got = imported(t, bin, "--data", b.dir, viaNode)
	require.Equal(t, 300, got.duplicates)
	require.Zero(t, got.added)

	// Without a node: the store in the folder itself.
	a.stop(t)
	local := filepath.Join(tmp, "local.snap")
	require.Equal(t, root, exported(t, bin, "--data", a.dir, "--content-topic", cliTopic, "--out", local))
	c := filepath.Join(tmp, "c") // no node ever ran here
	got = imported(t, bin, "--data", c, local)
	require.Equal(t, 300, got.added)
	require.Equal(t, root, got.scopeRoot)

	out, errOut, code := cli(t, bin, "", "import", "--data", c, "--json", local)
	require.Equal(t, 0, code, errOut)
	var rep importReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Equal(t, uint64(300), rep.Count)
	require.Equal(t, 300, rep.Duplicates)
	require.Equal(t, root, rep.Root)
	require.Equal(t, local, rep.Path)

	// Bad files: the reader's error, exit 1, nothing stored, with a node
	// and without.
	good, err := os.ReadFile(local)
	require.NoError(t, err)
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 1
	bad := map[string][]byte{"truncated": good[:len(good)-10], "flipped": flipped}
	says := map[string]string{"truncated": "snapshot: truncated", "flipped": "verify: snapshot: corrupt"}
	empty := filepath.Join(tmp, "empty")
	for name, content := range bad {
		path := filepath.Join(tmp, name+".snap")
		require.NoError(t, os.WriteFile(path, content, 0o644))
		for _, dir := range []string{b.dir, empty} {
			out, errOut, code := cli(t, bin, "", "import", "--data", dir, path)
			require.Equal(t, 1, code, errOut)
			require.Empty(t, out)
			require.Contains(t, errOut, "storesync import: import "+path+": "+says[name], dir)
		}
	}
	stB2 := status(t, bin, b.dir)
	require.Equal(t, stB.Scopes, stB2.Scopes, "the running node stored nothing")
	got = imported(t, bin, "--data", empty, local)
	require.Equal(t, 300, got.added, "the failed imports stored nothing")

	_, errOut, code = cli(t, bin, "", "export", "--data", c, "--content-topic", "/nope/1/x/proto", "--out", filepath.Join(tmp, "x.snap"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `scope not kept: content topic "/nope/1/x/proto" under pubsub topic "`+defaultPubsubTopic+`"`)
	require.NoFileExists(t, filepath.Join(tmp, "x.snap"))
	_, errOut, code = cli(t, bin, "", "export", "--data", filepath.Join(tmp, "never"), "--out", filepath.Join(tmp, "x.snap"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no store in")
	require.NoDirExists(t, filepath.Join(tmp, "never"))
	b.stop(t)
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	return wd
}

// TestCLIImportSurvivesKill: an import without a node, killed with
// SIGKILL at random moments while it stores, goes on where it stopped
// when run again, and the store ends with exactly the file's messages.
func TestCLIImportSurvivesKill(t *testing.T) {
	bin := storesyncBinary(t)
	tmp := t.TempDir()
	path, h := killTestSnapshot(t, filepath.Join(tmp, "big.snap"), 60_000)
	dir := filepath.Join(tmp, "store")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	for kill := range 5 {
		// Some batches in, kill within a few dozen milliseconds: each
		// run stores some batches, none stores them all (60,000
		// messages take the import well past that window).
		delay := time.Duration(rng.IntN(30)) * time.Millisecond
		require.NoError(t, killWhileStoring(t, bin, dir, path, delay), "kill %d", kill)
		if kill > 0 {
			continue
		}
		// The first run restored the scope in one pass and left its
		// bulk record: the next open keeps what it stored.
		d, err := node.OpenLevelDB(filepath.Join(dir, "datastore"))
		require.NoError(t, err)
		require.NotEmpty(t, keysUnder(t, d, "/storesync/resume/bulk"), "the killed one-pass import's record")
		require.NoError(t, d.Close())
		withDataFolder(t, dir, func(d ds.Batching, s *node.Store) {
			st, ok := s.Stats(h.Scope)
			require.True(t, ok, "kept after the open")
			require.Positive(t, st.Count)
			require.Less(t, st.Count, h.Count)
			require.Empty(t, keysUnder(t, d, "/storesync/resume/bulk"))
		}, node.WithVerifyOnOpen(true))
	}
	withDataFolder(t, dir, func(d ds.Batching, _ *node.Store) {
		require.NotEmpty(t, keysUnder(t, d, importRecords), "the killed import's record is stored")
	})
	out, errOut, code := cli(t, bin, "", "import", "--data", dir, path)
	require.Equal(t, 0, code, errOut)
	got := parseImport(t, out)
	t.Logf("after 5 kills: %s", strings.TrimSpace(out))
	require.Positive(t, got.resumedAt, "the last run resumed: %s", out)
	root := h.Root()
	require.Equal(t, hex.EncodeToString(root[:]), got.root)
	require.Equal(t, got.root, got.scopeRoot)
	require.Equal(t, int(h.Count), got.scopeCount)
	// A batch's import record commits right after its messages, in the
	// other LevelDB of the folder: a kill between the two leaves the
	// record one batch behind, and that batch, read again, is counted as
	// duplicates and stores nothing. At most one batch: 4 KiB of messages
	// of 100 bytes or more.
	require.LessOrEqual(t, got.duplicates, 40, "at most the batch in flight at the last kill is read twice")
	require.Equal(t, int(h.Count), got.added+got.duplicates+got.storedBefore, "every message stored once")

	// The store proves itself: every tree invariant, every message.
	withDataFolder(t, dir, func(d ds.Batching, s *node.Store) {
		st, ok := s.Stats(h.Scope)
		require.True(t, ok)
		require.Equal(t, h.Count, st.Count)
		require.Equal(t, h.Root(), st.Root)
		require.Empty(t, keysUnder(t, d, importRecords), "no import record is left")
	}, node.WithVerifyOnOpen(true))
}

// killWhileStoring runs an import, waits until it has stored some
// batches (the store's files have grown by 32 KiB since it began
// storing), waits delay more and kills it with SIGKILL. It fails if the
// import ends on its own.
func killWhileStoring(t *testing.T, bin, dir, path string, delay time.Duration) error {
	t.Helper()
	cmd := exec.Command(bin, "import", "--data", dir, path)
	cmd.Env = commandEnv()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	storing := make(chan struct{})
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			if !seen && strings.HasPrefix(sc.Text(), "storing ") {
				seen = true
				close(storing)
			}
		}
		exited <- cmd.Wait() // only once stderr is drained, as Wait requires
	}()
	deadline := time.After(15 * time.Second)
	select {
	case <-storing:
	case err := <-exited:
		return fmt.Errorf("the import ended before storing: %v", err)
	case <-deadline:
		_ = cmd.Process.Kill()
		<-exited
		return errors.New("the import did not start storing in time")
	}
	start := dirSize(t, filepath.Join(dir, "datastore"))
	for dirSize(t, filepath.Join(dir, "datastore")) < start+32<<10 {
		select {
		case err := <-exited:
			return fmt.Errorf("the import ended on its own: %v", err)
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("the import stored nothing in time")
		case <-time.After(time.Millisecond):
		}
	}
	time.Sleep(delay)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err = <-exited
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		return fmt.Errorf("the import ended on its own: %v", err)
	}
	return nil
}

// dirSize returns the total size of the files in dir and its folders.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			// A file may go between the listing and its Info: it counts 0.
			return nil
		}
		if fi, err := e.Info(); err == nil && !e.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	require.NoError(t, err)
	return n
}

// killTestSnapshot writes a snapshot of n messages of 100 to 300 bytes in
// batches of 4 KiB at most: several hundred batches, each a commit.
func killTestSnapshot(t *testing.T, path string, n int) (string, snapshot.Header) {
	t.Helper()
	sc := reconcile.Scope{PubsubTopic: defaultPubsubTopic, ContentTopic: cliTopic}
	rng := rand.New(rand.NewPCG(3, 4))
	msgs := make([]reconcile.Message, n)
	for i := range msgs {
		p := make([]byte, 100+rng.IntN(200))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		msgs[i] = reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: p,
			Timestamp: 1_700_000_000_000_000_000 + int64(i)*1_000_000}
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	w, err := snapshot.NewWriter(f, sc, snapshot.WithMaxMessageSize(1<<10), snapshot.WithMaxBatchSize(4<<10))
	require.NoError(t, err)
	for _, m := range msgs {
		require.NoError(t, w.Add(m))
	}
	h, err := w.Close()
	require.NoError(t, err)
	return path, h
}
