package snapshot_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

// TestWriterRefuses: each refused message returns its sentinel, leaves
// nothing in the file, and the writer goes on.
func TestWriterRefuses(t *testing.T) {
	msgs := genMessages(10, chat, 50, 300)
	var f memFile
	w, err := snapshot.NewWriter(&f, chat, small...)
	require.NoError(t, err)
	for _, m := range msgs[:25] {
		require.NoError(t, w.Add(m))
	}

	require.ErrorIs(t, w.Add(msgs[24]), snapshot.ErrOrder, "the same key again")
	require.ErrorIs(t, w.Add(msgs[3]), snapshot.ErrOrder, "a lower key")
	same := msgs[25]
	same.Timestamp = msgs[24].Timestamp - 1
	require.ErrorIs(t, w.Add(same), snapshot.ErrOrder, "an earlier time")

	wrong := msgs[25]
	wrong.ContentTopic = other.ContentTopic
	require.ErrorIs(t, w.Add(wrong), snapshot.ErrScope)
	wrong = msgs[25]
	wrong.PubsubTopic = "/waku/2/rs/1/1"
	require.ErrorIs(t, w.Add(wrong), snapshot.ErrScope)

	bad := msgs[25]
	bad.Timestamp = 0
	err = w.Add(bad)
	require.ErrorIs(t, err, snapshot.ErrInvalid)
	require.ErrorIs(t, err, reconcile.ErrBadTimestamp, "the reason is wrapped")
	bad.Timestamp = -5
	require.ErrorIs(t, w.Add(bad), snapshot.ErrInvalid)

	big := msgs[25]
	big.Payload = make([]byte, 1<<10)
	require.ErrorIs(t, w.Add(big), snapshot.ErrTooLarge)

	for _, m := range msgs[25:] {
		require.NoError(t, w.Add(m))
	}
	h, err := w.Close()
	require.NoError(t, err)
	require.Equal(t, uint64(len(msgs)), h.Count)
	bs, err := readAll(f.b, small...)
	require.NoError(t, err)
	requireSameMessages(t, msgs, messagesOf(bs))

	require.ErrorIs(t, w.Add(msgs[0]), snapshot.ErrClosed)
	_, err = w.Close()
	require.ErrorIs(t, err, snapshot.ErrClosed)
}

// TestWriterCopies: Add keeps no reference to the caller's buffers.
func TestWriterCopies(t *testing.T) {
	msgs := genMessages(11, chat, 20, 300)
	var f memFile
	w, err := snapshot.NewWriter(&f, chat, small...)
	require.NoError(t, err)
	for _, m := range msgs {
		p := append([]byte(nil), m.Payload...)
		m.Payload = p
		require.NoError(t, w.Add(m))
		clear(p)
	}
	_, err = w.Close()
	require.NoError(t, err)
	bs, err := readAll(f.b, small...)
	require.NoError(t, err)
	requireSameMessages(t, msgs, messagesOf(bs))
}

// failFile fails every write after the first n bytes.
type failFile struct {
	memFile
	n int
}

var errDisk = errors.New("disk full")

func (f *failFile) Write(p []byte) (int, error) {
	if len(f.b)+len(p) > f.n {
		return 0, errDisk
	}
	return f.memFile.Write(p)
}

// TestWriterIOError: a failed write fails that call and every later one.
func TestWriterIOError(t *testing.T) {
	f := &failFile{n: 4 << 10}
	w, err := snapshot.NewWriter(f, chat, small...)
	require.NoError(t, err)
	msgs := genMessages(12, chat, 200, 300)
	var failed error
	for _, m := range msgs {
		if failed = w.Add(m); failed != nil {
			break
		}
	}
	require.ErrorIs(t, failed, errDisk)
	require.ErrorIs(t, w.Add(msgs[len(msgs)-1]), errDisk)
	_, err = w.Close()
	require.ErrorIs(t, err, errDisk)
	_, err = readAll(f.b, small...)
	require.ErrorIs(t, err, snapshot.ErrTruncated, "the header was never finished")
}

// TestWriterAddKeyed: AddKeyed with each message's key writes the very
// bytes Add writes; with a wrong key it writes a file every reader
// refuses, since readers recompute every hash.
func TestWriterAddKeyed(t *testing.T) {
	msgs := genMessages(11, chat, 60, 300)
	want, _ := write(t, chat, msgs, small...)
	addKeyed := func(key func(i int) reconcile.Key) []byte {
		var f memFile
		w, err := snapshot.NewWriter(&f, chat, append(small, snapshot.WithCreated(created))...)
		require.NoError(t, err)
		for i, m := range msgs {
			require.NoError(t, w.AddKeyed(m, key(i)))
		}
		_, err = w.Close()
		require.NoError(t, err)
		return f.b
	}
	require.Equal(t, want, addKeyed(func(i int) reconcile.Key { return msgs[i].Key() }))

	forged := addKeyed(func(i int) reconcile.Key {
		k := msgs[i].Key()
		if i == 30 {
			k.Hash[0] ^= 1
		}
		return k
	})
	_, err := readAll(forged, small...)
	require.ErrorIs(t, err, snapshot.ErrMismatch)
}
