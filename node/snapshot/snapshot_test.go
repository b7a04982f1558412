package snapshot_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

func TestRoundTrip(t *testing.T) {
	msgs := genMessages(1, chat, 4000, 300)
	opts := []snapshot.Option{snapshot.WithMaxMessageSize(4 << 10), snapshot.WithMaxBatchSize(16 << 10)}

	path := filepath.Join(t.TempDir(), "chat.snap")
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := snapshot.NewWriter(f, chat, append(opts, snapshot.WithCreated(created))...)
	require.NoError(t, err)
	for _, m := range msgs {
		require.NoError(t, w.Add(m))
	}
	wh, err := w.Close()
	require.NoError(t, err)
	require.NoError(t, f.Close())

	f, err = os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r, err := snapshot.NewReader(f, opts...)
	require.NoError(t, err)
	defer r.Close()
	h := r.Header()
	require.Equal(t, wh, h)
	require.Equal(t, chat, h.Scope)
	require.Equal(t, uint64(len(msgs)), h.Count)
	require.Equal(t, aggregate(msgs), h.Agg)
	require.Equal(t, aggregate(msgs).Fingerprint(), h.Root())
	require.Equal(t, msgs[0].Key(), h.First)
	require.Equal(t, msgs[len(msgs)-1].Key(), h.Last)
	require.True(t, created.Equal(h.Created))
	fi, err := f.Stat()
	require.NoError(t, err)
	require.Equal(t, fi.Size(), h.Size)

	bs, err := drain(r)
	require.NoError(t, err)
	require.Greater(t, len(bs), 20, "a small batch limit gives many batches")
	for i, b := range bs {
		require.Equal(t, i, b.Index)
		require.LessOrEqual(t, b.Size, 16<<10)
		if i > 0 {
			require.Equal(t, bs[i-1].Next, b.Offset)
		}
		for _, m := range b.Messages {
			require.Equal(t, len(m.Payload), cap(m.Payload), "a payload is capped at its length")
		}
	}
	require.Equal(t, h.Size-49, bs[len(bs)-1].Next, "the trailer follows the last batch")
	requireSameMessages(t, msgs, messagesOf(bs))
	require.Equal(t, uint64(len(msgs)), r.State().Count())
	require.Equal(t, len(bs), r.State().Batches())

	_, err = r.Next()
	require.ErrorIs(t, err, io.EOF, "io.EOF again after the end")
}

func TestRoundTripDefaults(t *testing.T) {
	msgs := genMessages(2, chat, 3000, 300)
	data, h := write(t, chat, msgs)
	bs, err := readAll(data)
	require.NoError(t, err)
	requireSameMessages(t, msgs, messagesOf(bs))
	require.Equal(t, aggregate(msgs), h.Agg)
}

func TestEmpty(t *testing.T) {
	data, h := write(t, chat, nil)
	require.Zero(t, h.Count)
	require.Equal(t, (snapshot.Header{}).Agg, h.Agg)
	bs, err := readAll(data)
	require.NoError(t, err)
	require.Empty(t, bs)

	r, err := snapshot.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, h, r.Header())
	require.Equal(t, chat, r.Header().Scope)
}

// TestOffsetInFile writes a snapshot after other bytes and reads it from
// there: offsets count from the snapshot's start.
func TestOffsetInFile(t *testing.T) {
	msgs := genMessages(3, chat, 200, 300)
	f := &memFile{}
	_, _ = f.Write([]byte("prefix"))
	w, err := snapshot.NewWriter(f, chat, small...)
	require.NoError(t, err)
	for _, m := range msgs {
		require.NoError(t, w.Add(m))
	}
	h, err := w.Close()
	require.NoError(t, err)
	require.Equal(t, int64(len(f.b)-6), h.Size)

	rs := bytes.NewReader(f.b)
	_, _ = rs.Seek(6, 0)
	r, err := snapshot.NewReader(rs, small...)
	require.NoError(t, err)
	bs, err := drain(r)
	require.NoError(t, err)
	requireSameMessages(t, msgs, messagesOf(bs))
	require.Equal(t, h.Size-49, bs[len(bs)-1].Next)
}

// TestUnfinished: a writer that never reached Close leaves a file that
// reads as truncated.
func TestUnfinished(t *testing.T) {
	var f memFile
	w, err := snapshot.NewWriter(&f, chat, small...)
	require.NoError(t, err)
	for _, m := range genMessages(4, chat, 100, 300) {
		require.NoError(t, w.Add(m))
	}
	_, err = readAll(f.b)
	require.ErrorIs(t, err, snapshot.ErrTruncated)
}

// TestBatchLimit: a reader refuses a file written with larger batches than
// it accepts, before reading any.
func TestBatchLimit(t *testing.T) {
	data, _ := write(t, chat, genMessages(5, chat, 500, 300), snapshot.WithMaxBatchSize(64<<10), snapshot.WithMaxMessageSize(1<<10))
	_, err := readAll(data, snapshot.WithMaxBatchSize(16<<10), snapshot.WithMaxMessageSize(1<<10))
	require.ErrorIs(t, err, snapshot.ErrTooLarge)
	_, err = readAll(data, snapshot.WithMaxBatchSize(64<<10), snapshot.WithMaxMessageSize(1<<10))
	require.NoError(t, err)
}

// TestMessageLimit: a message at the limit passes, one byte more is
// refused by the writer, and a reader with a lower limit fails on it.
func TestMessageLimit(t *testing.T) {
	const limit = 1000
	m := genMessages(6, chat, 1, 0)[0]
	for m.ToPB().Size() < limit {
		m.Payload = append(m.Payload, 'x')
	}
	require.Equal(t, limit, m.ToPB().Size())
	data, _ := write(t, chat, []reconcile.Message{m}, snapshot.WithMaxMessageSize(limit), snapshot.WithMaxBatchSize(1<<10))

	_, err := readAll(data, snapshot.WithMaxMessageSize(limit), snapshot.WithMaxBatchSize(1<<10))
	require.NoError(t, err)
	_, err = readAll(data, snapshot.WithMaxMessageSize(limit-1), snapshot.WithMaxBatchSize(1<<10))
	require.ErrorIs(t, err, snapshot.ErrTooLarge)

	var f memFile
	w, err := snapshot.NewWriter(&f, chat, snapshot.WithMaxMessageSize(limit-1), snapshot.WithMaxBatchSize(1<<10))
	require.NoError(t, err)
	require.ErrorIs(t, w.Add(m), snapshot.ErrTooLarge)
}

func TestOptions(t *testing.T) {
	var f memFile
	for _, o := range []snapshot.Option{
		snapshot.WithMaxBatchSize(100), snapshot.WithMaxBatchSize(1 << 30),
		snapshot.WithMaxMessageSize(0), snapshot.WithMaxMessageSize(4 << 20), // above the default batch size
		snapshot.WithCompressionLevel(0), snapshot.WithCompressionLevel(23),
		snapshot.WithCreated(time.Time{}),
	} {
		_, err := snapshot.NewWriter(&f, chat, o)
		require.Error(t, err)
	}
	_, err := snapshot.NewWriter(&f, reconcile.Scope{PubsubTopic: "p"}, small...)
	require.ErrorIs(t, err, snapshot.ErrInvalid)
	for _, level := range []int{1, 3, 9, 22} {
		msgs := genMessages(7, chat, 300, 300)
		data, _ := write(t, chat, msgs, snapshot.WithCompressionLevel(level))
		bs, err := readAll(data)
		require.NoError(t, err)
		requireSameMessages(t, msgs, messagesOf(bs))
	}
}
