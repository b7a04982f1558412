package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestControlPutRefusesLargeMessages: the control API stores a message
// at the maximum size and refuses a larger one with the reason.
func TestControlPutRefusesLargeMessages(t *testing.T) {
	c := serveControl(t, newTestNode(t))
	var put putResponse
	require.NoError(t, c.call(t.Context(), http.MethodPost, "/put",
		putRequest{ContentTopic: testTopic, Payloads: []string{"small", strings.Repeat("x", 160<<10)}, Timestamp: 1}, &put))
	require.Len(t, put.Added, 1)
	require.Len(t, put.Rejected, 1)
	require.Equal(t, 1, put.Rejected[0].Index)
	require.Contains(t, put.Rejected[0].Error, "message too large")
	require.Contains(t, put.Rejected[0].Error, "at most 153600")
}

// TestControlPutRefusesMessagesAhead: the control API refuses a message
// timestamped further ahead of the node's clock than 20 s, with the
// reason, and stores one a few seconds ahead.
func TestControlPutRefusesMessagesAhead(t *testing.T) {
	c := serveControl(t, newTestNode(t))
	for _, tc := range []struct {
		ahead time.Duration
		ok    bool
	}{{5 * time.Second, true}, {time.Hour, false}} {
		var put putResponse
		require.NoError(t, c.call(t.Context(), http.MethodPost, "/put",
			putRequest{ContentTopic: testTopic, Payloads: []string{"x"}, Timestamp: time.Now().Add(tc.ahead).UnixNano()}, &put))
		if tc.ok {
			require.Len(t, put.Added, 1)
			continue
		}
		require.Len(t, put.Rejected, 1)
		require.Contains(t, put.Rejected[0].Error, "message timestamp too far ahead of the local clock")
		require.Contains(t, put.Rejected[0].Error, "at most 20s")
	}
}

// TestCLIPutRefusesLargeMessages: put says which line was too large and
// exits 1; the other lines are stored.
func TestCLIPutRefusesLargeMessages(t *testing.T) {
	bin := storesyncBinary(t)
	p := startNode(t, bin, filepath.Join(t.TempDir(), "a"))
	in := "first\n" + strings.Repeat("x", 200_000) + "\nthird\n"
	out, errOut, code := cli(t, bin, in, "put", "--data", p.dir, "--content-topic", cliTopic)
	require.Equal(t, 1, code)
	require.Len(t, strings.Fields(out), 2, "the two small messages are stored")
	require.Contains(t, errOut, "line 2 rejected: invalid message: message too large: ")
	require.Contains(t, errOut, "at most 153600")
	p.stop(t)
}
