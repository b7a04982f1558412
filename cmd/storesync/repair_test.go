package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCLIRepair: repair refuses a folder whose node runs, and on a
// stopped node rebuilds its store and prints each scope's counts; the
// node then starts with --verify and keeps its messages.
func TestCLIRepair(t *testing.T) {
	bin := storesyncBinary(t)
	p := startNode(t, bin, filepath.Join(t.TempDir(), "a"))
	out, _, code := cli(t, bin, "one\ntwo\nthree\n", "put", "--data", p.dir, "--content-topic", cliTopic)
	require.Equal(t, 0, code, out)
	_, errOut, code := cli(t, bin, "", "repair", "--data", p.dir)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "stop the node running with --data")
	p.stop(t)

	out, errOut, code = cli(t, bin, "", "repair", "--data", p.dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "CONTENT TOPIC")
	require.Regexp(t, cliTopic+`\s+3\s+3\s+0\s`, out)

	p = startNode(t, bin, p.dir, "--verify", "--content-topic", cliTopic)
	out, _, code = cli(t, bin, "", "query", "--data", p.dir, "--content-topic", cliTopic)
	require.Equal(t, 0, code)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 3)
	p.stop(t)
}
