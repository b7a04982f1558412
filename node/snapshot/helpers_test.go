package snapshot_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

var (
	chat  = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/chat/1/room/proto"}
	other = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/other/1/x/proto"}
	// created makes files reproducible.
	created = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
)

// small are options for files of many small batches.
var small = []snapshot.Option{snapshot.WithMaxMessageSize(1 << 10), snapshot.WithMaxBatchSize(2 << 10)}

// genMessages returns n distinct messages of sc in key order: payloads of
// 0 to maxPayload bytes, a meta on every fifth, and timestamps that
// often repeat so that hashes order them too.
func genMessages(seed uint64, sc reconcile.Scope, n, maxPayload int) []reconcile.Message {
	rng := rand.New(rand.NewPCG(seed, 1))
	ts := int64(1_700_000_000_000_000_000)
	msgs := make([]reconcile.Message, 0, n)
	for i := range n {
		if rng.IntN(3) == 0 {
			ts += rng.Int64N(1_000_000)
		}
		m := reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Timestamp: ts}
		if p := rng.IntN(maxPayload + 1); p > 0 {
			m.Payload = make([]byte, p)
			for j := range m.Payload {
				// Half random, half text-like, so zstd has work either way.
				m.Payload[j] = byte(rng.IntN(256))
				if j%2 == 1 {
					m.Payload[j] = 'a' + byte(i%7)
				}
			}
		}
		if i%5 == 0 {
			m.Meta = []byte{byte(i), byte(i >> 8), 'm'}
		}
		msgs = append(msgs, m)
	}
	return sortByKey(msgs)
}

// sortByKey sorts messages by key and drops repeated keys.
func sortByKey(msgs []reconcile.Message) []reconcile.Message {
	slices.SortFunc(msgs, func(a, b reconcile.Message) int { return a.Key().Compare(b.Key()) })
	return slices.CompactFunc(msgs, func(a, b reconcile.Message) bool { return a.Key() == b.Key() })
}

// memFile is an in-memory io.ReadWriteSeeker.
type memFile struct {
	b   []byte
	pos int64
}

func (f *memFile) Write(p []byte) (int, error) {
	if end := int(f.pos) + len(p); end > len(f.b) {
		f.b = append(f.b, make([]byte, end-len(f.b))...)
	}
	copy(f.b[f.pos:], p)
	f.pos += int64(len(p))
	return len(p), nil
}

func (f *memFile) Read(p []byte) (int, error) {
	if f.pos >= int64(len(f.b)) {
		return 0, io.EOF
	}
	n := copy(p, f.b[f.pos:])
	f.pos += int64(n)
	return n, nil
}

func (f *memFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += f.pos
	case io.SeekEnd:
		off += int64(len(f.b))
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	f.pos = off
	return off, nil
}

// write returns the snapshot of msgs.
func write(t testing.TB, sc reconcile.Scope, msgs []reconcile.Message, opts ...snapshot.Option) ([]byte, snapshot.Header) {
	t.Helper()
	var f memFile
	w, err := snapshot.NewWriter(&f, sc, append([]snapshot.Option{snapshot.WithCreated(created)}, opts...)...)
	require.NoError(t, err)
	for _, m := range msgs {
		require.NoError(t, w.Add(m))
	}
	h, err := w.Close()
	require.NoError(t, err)
	require.Equal(t, int64(len(f.b)), h.Size)
	return f.b, h
}

// readAll reads a snapshot to its end: the batches, and nil when Next
// returned io.EOF, else the first error.
func readAll(data []byte, opts ...snapshot.Option) ([]snapshot.Batch, error) {
	r, err := snapshot.NewReader(bytes.NewReader(data), opts...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return drain(r)
}

// drain calls Next until it fails: nil on io.EOF.
func drain(r *snapshot.Reader) ([]snapshot.Batch, error) {
	var bs []snapshot.Batch
	for {
		b, err := r.Next()
		if err == io.EOF {
			return bs, nil
		}
		if err != nil {
			return bs, err
		}
		bs = append(bs, b)
	}
}

// messagesOf concatenates the batches' messages.
func messagesOf(bs []snapshot.Batch) []reconcile.Message {
	var msgs []reconcile.Message
	for _, b := range bs {
		msgs = append(msgs, b.Messages...)
	}
	return msgs
}

// requireSameMessages compares messages field by field, an empty payload
// or meta equal to a nil one.
func requireSameMessages(t testing.TB, want, got []reconcile.Message) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, w.Scope(), g.Scope(), "message %d", i)
		require.Equal(t, w.Timestamp, g.Timestamp, "message %d", i)
		require.True(t, bytes.Equal(w.Payload, g.Payload), "message %d payload", i)
		require.True(t, bytes.Equal(w.Meta, g.Meta), "message %d meta", i)
	}
}

// aggregate sums the messages' hashes.
func aggregate(msgs []reconcile.Message) reconcile.Aggregate {
	var a reconcile.Aggregate
	for _, m := range msgs {
		h := m.Hash()
		a = a.AddHash(&h)
	}
	return a
}

// lyingReader serves a prefix of a file while reporting the whole file's
// size: a file that shrank after it was opened, or a download that
// stalls. It makes the reader meet the end of the data inside a batch.
type lyingReader struct {
	*bytes.Reader
	size int64
}

func (l *lyingReader) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekEnd {
		return l.Reader.Seek(l.size+off, io.SeekStart)
	}
	return l.Reader.Seek(off, whence)
}

// anySentinel reports whether err is one of the reader's failures.
func anySentinel(err error) bool {
	for _, s := range []error{snapshot.ErrFormat, snapshot.ErrTruncated, snapshot.ErrCorrupt, snapshot.ErrMismatch, snapshot.ErrTooLarge} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
