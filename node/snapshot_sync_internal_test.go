package node

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEarlySync: writes and seeks reach the file unchanged, syncs run in
// the background as the bytes accumulate, and Sync returns once they and
// a last one are done.
func TestEarlySync(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	e := newEarlySync(f)
	e.every = 100
	var want []byte
	for i := range 50 {
		b := bytes.Repeat([]byte{byte(i)}, 30)
		n, err := e.Write(b)
		require.NoError(t, err)
		require.Equal(t, len(b), n)
		want = append(want, b...)
	}
	_, err = e.Seek(10, io.SeekStart)
	require.NoError(t, err)
	_, err = e.Write([]byte("head"))
	require.NoError(t, err)
	copy(want[10:], "head")
	require.NoError(t, e.Sync())
	require.GreaterOrEqual(t, e.syncs, 1)
	got, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// TestEarlySyncError: a file that cannot be synced fails Sync, and stop
// ends the background syncs of a file given up.
func TestEarlySyncError(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("relies on Linux refusing to sync /dev/null")
	}
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	e := newEarlySync(f)
	e.every = 10
	_, err = e.Write(make([]byte, 20))
	require.NoError(t, err)
	require.Error(t, e.Sync())

	g, err := os.Create(filepath.Join(t.TempDir(), "g"))
	require.NoError(t, err)
	defer g.Close()
	e = newEarlySync(g)
	_, err = e.Write([]byte("x"))
	require.NoError(t, err)
	e.stop()
	require.Zero(t, e.syncs)
}
