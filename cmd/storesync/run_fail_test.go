package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCLIRunReportsStartFailures: a node that cannot start says why and
// exits 1; it never panics, and it frees its data folder for the next
// try.
func TestCLIRunReportsStartFailures(t *testing.T) {
	bin := storesyncBinary(t)
	dir := filepath.Join(t.TempDir(), "node")
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/99999", "/ip4/192.0.2.1/tcp/0"} {
		out, errOut, code := cli(t, bin, "", "run", "--data", dir, "--listen", listen)
		require.Equal(t, 1, code, errOut)
		// libp2p may log the failure first; the command's own line is last.
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		require.True(t, strings.HasPrefix(lines[len(lines)-1], "storesync run: "), errOut)
		require.NotContains(t, errOut, "panic")
		require.NotContains(t, out, "ready")
	}
	p := startNode(t, bin, dir)
	p.stop(t)
}
