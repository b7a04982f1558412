package snapshot_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

// smallFile is a file of several batches, small enough to damage at
// every byte.
func smallFile(t testing.TB) ([]byte, []reconcile.Message) {
	msgs := genMessages(20, chat, 100, 150)
	data, _ := write(t, chat, msgs, small...)
	bs, err := readAll(data, small...)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(bs), 3)
	return data, msgs
}

// TestTruncatedEverywhere cuts a file at every offset: the reader must
// report ErrTruncated, whether it learns the true length (a partial file)
// or meets the end inside a batch (a file that shrank, a stalled
// download), and never io.EOF.
func TestTruncatedEverywhere(t *testing.T) {
	data, _ := smallFile(t)
	for cut := range len(data) {
		_, err := readAll(data[:cut], small...)
		require.ErrorIs(t, err, snapshot.ErrTruncated, "cut at %d", cut)

		r, err := snapshot.NewReader(&lyingReader{bytes.NewReader(data[:cut]), int64(len(data))}, small...)
		if err == nil {
			_, err = drain(r)
		}
		require.ErrorIs(t, err, snapshot.ErrTruncated, "cut at %d, size unknown", cut)
	}
}

// TestBitFlips damages every byte of a file in three ways: every change
// must fail the read, never pass with other content.
func TestBitFlips(t *testing.T) {
	data, _ := smallFile(t)
	for i := range data {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			d := bytes.Clone(data)
			d[i] ^= mask
			_, err := readAll(d, small...)
			require.Error(t, err, "byte %d ^ %#x", i, mask)
			require.True(t, anySentinel(err), "byte %d ^ %#x: %v", i, mask, err)
		}
	}
}

// TestTrailingBytes: anything after the trailer is refused.
func TestTrailingBytes(t *testing.T) {
	data, _ := smallFile(t)
	_, err := readAll(append(bytes.Clone(data), 0), small...)
	require.ErrorIs(t, err, snapshot.ErrCorrupt)
}

func TestNotASnapshot(t *testing.T) {
	for _, d := range [][]byte{[]byte("hello, world, this is not a snapshot"), []byte("SSYNSNA?"), []byte("x")} {
		_, err := readAll(d)
		require.ErrorIs(t, err, snapshot.ErrFormat, "%q", d)
	}
	data, _ := smallFile(t)
	v2 := bytes.Clone(data)
	v2[9] = 2
	_, err := readAll(v2, small...)
	require.ErrorIs(t, err, snapshot.ErrFormat, "an unknown version is named as such, checksum aside")
}

// headerField locates the header's fields in a file of scope chat.
func headerField(name string) (int, int) {
	t := 16 + len(chat.PubsubTopic) + len(chat.ContentTopic)
	switch name {
	case "created":
		return t, 8
	case "count":
		return t + 20, 8
	case "sum":
		return t + 28, 32
	case "first":
		return t + 60, 40
	case "last":
		return t + 100, 40
	}
	panic(name)
}

// fixCRC recomputes the header checksum of a file of scope chat.
func fixCRC(d []byte) {
	end := 16 + len(chat.PubsubTopic) + len(chat.ContentTopic) + 140
	binary.BigEndian.PutUint32(d[end:], crc32.Checksum(d[:end], crc32.MakeTable(crc32.Castagnoli)))
}

// TestForgedHeader changes header fields after writing: with the checksum
// left alone the header is corrupt; with it fixed the content disagrees
// with the claim.
func TestForgedHeader(t *testing.T) {
	data, msgs := smallFile(t)
	k := msgs[10].Key()
	forgeries := map[string]func(d []byte){
		"count+1": func(d []byte) {
			o, _ := headerField("count")
			binary.BigEndian.PutUint64(d[o:], uint64(len(msgs)+1))
		},
		"count-1": func(d []byte) {
			o, _ := headerField("count")
			binary.BigEndian.PutUint64(d[o:], uint64(len(msgs)-1))
		},
		"sum": func(d []byte) {
			o, _ := headerField("sum")
			d[o] ^= 1
		},
		"first": func(d []byte) {
			o, _ := headerField("first")
			copy(d[o:], k.Bytes())
		},
		"first lower": func(d []byte) {
			o, _ := headerField("first")
			d[o+7]--
		},
		"last": func(d []byte) {
			o, _ := headerField("last")
			copy(d[o:], k.Bytes())
		},
		"last higher": func(d []byte) {
			o, _ := headerField("last")
			d[o+7]++
		},
	}
	for name, forge := range forgeries {
		d := bytes.Clone(data)
		forge(d)
		_, err := readAll(d, small...)
		require.ErrorIs(t, err, snapshot.ErrCorrupt, "%s, checksum not fixed", name)
		fixCRC(d)
		_, err = readAll(d, small...)
		require.ErrorIs(t, err, snapshot.ErrMismatch, "%s, checksum fixed", name)
	}

	// Fields in the chain's seed break the first batch's link.
	d := bytes.Clone(data)
	o, _ := headerField("created")
	d[o+7]++
	fixCRC(d)
	_, err := readAll(d, small...)
	require.ErrorIs(t, err, snapshot.ErrCorrupt)
	d = bytes.Clone(data)
	d[16] = 'X' // the pubsub topic
	fixCRC(d)
	_, err = readAll(d, small...)
	require.ErrorIs(t, err, snapshot.ErrCorrupt)
}

// TestForgedScope re-encodes a whole file, checksums and chain included,
// under another scope's header: every hash changes, so the content no
// longer matches the claimed keys and root.
func TestForgedScope(t *testing.T) {
	data, msgs := smallFile(t)
	s := specOf(chat, 2<<10, batchesOf(t, data, small...))
	s.hdr.Scope = other
	_, err := readAll(s.bytes(), small...)
	require.ErrorIs(t, err, snapshot.ErrMismatch)

	// Even with the header's claims computed for the other scope, the
	// root differs from the true one: a publisher cannot pass one scope's
	// messages off as another's under the same root.
	moved := make([]reconcile.Message, len(msgs))
	for i, m := range msgs {
		m.PubsubTopic, m.ContentTopic = other.PubsubTopic, other.ContentTopic
		moved[i] = m
	}
	bs, err := readAll(s.bytes(), small...)
	_ = bs
	require.Error(t, err)
	require.NotEqual(t, aggregate(msgs).Fingerprint(), aggregate(moved).Fingerprint())
}

// TestSwappedBatches: two batches swapped fail the chain; swapped with
// the chain recomputed, they fail the key order.
func TestSwappedBatches(t *testing.T) {
	data, _ := smallFile(t)
	bs, err := readAll(data, small...)
	require.NoError(t, err)
	a, b := bs[0], bs[1]
	d := slices.Concat(data[:a.Offset], data[b.Offset:b.Next], data[a.Offset:a.Next], data[b.Next:])
	require.Len(t, d, len(data))
	_, err = readAll(d, small...)
	require.ErrorIs(t, err, snapshot.ErrCorrupt)

	batches := batchesOf(t, data, small...)
	s := specOf(chat, 2<<10, batches)
	s.batches[0], s.batches[1] = s.batches[1], s.batches[0]
	_, err = readAll(s.bytes(), small...)
	require.ErrorIs(t, err, snapshot.ErrMismatch, "the first key is no longer the header's")

	s = specOf(chat, 2<<10, batches)
	s.batches[1], s.batches[2] = s.batches[2], s.batches[1]
	_, err = readAll(s.bytes(), small...)
	require.ErrorIs(t, err, snapshot.ErrOrder)
	require.ErrorIs(t, err, snapshot.ErrCorrupt)
}

// TestForgedContent builds files whose checksums are all right but whose
// messages are not: each must fail with the error that names the fault.
func TestForgedContent(t *testing.T) {
	data, msgs := smallFile(t)
	batches := batchesOf(t, data, small...)
	clone := func() [][]reconcile.Message {
		out := make([][]reconcile.Message, len(batches))
		for i, b := range batches {
			out[i] = append([]reconcile.Message(nil), b...)
		}
		return out
	}
	// keepHeader re-encodes the batches under the true header's claims.
	keepHeader := func(bs [][]reconcile.Message) []byte {
		s := specOf(chat, 2<<10, bs)
		s.hdr.Agg, s.hdr.Count = aggregate(msgs), uint64(len(msgs))
		s.hdr.First, s.hdr.Last = msgs[0].Key(), msgs[len(msgs)-1].Key()
		return s.bytes()
	}

	t.Run("out of order", func(t *testing.T) {
		bs := clone()
		bs[1][0], bs[1][1] = bs[1][1], bs[1][0]
		_, err := readAll(keepHeader(bs), small...)
		require.ErrorIs(t, err, snapshot.ErrOrder)
	})
	t.Run("duplicate", func(t *testing.T) {
		bs := clone()
		bs[1] = append([]reconcile.Message{bs[0][len(bs[0])-1]}, bs[1]...)
		// The longer batch needs a larger limit.
		_, err := readAll(specOf(chat, 4<<10, bs).bytes(), snapshot.WithMaxMessageSize(1<<10), snapshot.WithMaxBatchSize(4<<10))
		require.ErrorIs(t, err, snapshot.ErrOrder)
	})
	t.Run("payload altered", func(t *testing.T) {
		for i := range batches {
			bs := clone()
			m := bs[i][len(bs[i])/2]
			m.Payload = append(bytes.Clone(m.Payload), '!')
			bs[i][len(bs[i])/2] = m
			_, err := readAll(keepHeader(bs), small...)
			require.True(t, anySentinel(err), "batch %d: %v", i, err)
		}
	})
	t.Run("message dropped", func(t *testing.T) {
		bs := clone()
		bs[1] = bs[1][1:]
		_, err := readAll(keepHeader(bs), small...)
		require.ErrorIs(t, err, snapshot.ErrMismatch)
	})
	t.Run("message added past the end", func(t *testing.T) {
		bs := clone()
		extra := msgs[len(msgs)-1]
		extra.Timestamp++
		bs[len(bs)-1] = append(bs[len(bs)-1], extra)
		_, err := readAll(keepHeader(bs), small...)
		require.ErrorIs(t, err, snapshot.ErrMismatch)
	})
	t.Run("zero timestamp", func(t *testing.T) {
		bs := clone()
		bs[0][0].Timestamp = 0
		_, err := readAll(keepHeader(bs), small...)
		require.ErrorIs(t, err, snapshot.ErrInvalid)
		require.ErrorIs(t, err, snapshot.ErrCorrupt)
	})
	t.Run("raw encodings", func(t *testing.T) {
		good := encodeRaw(batches[0])
		n := uint32(len(batches[0]))
		for name, c := range map[string]struct {
			n   uint32
			raw []byte
		}{
			"trailing byte":      {n, append(bytes.Clone(good), 0)},
			"one message short":  {n + 1, good},
			"no messages":        {0, nil},
			"non-minimal varint": {1, []byte{0x81, 0x00, 0x00, 0x00}},
			"length past end":    {1, []byte{0x01, 0x05, 'a'}},
			"varint overflow":    {1, append(bytes.Repeat([]byte{0xff}, 10), 0x01, 0, 0)},
		} {
			s := specOf(chat, 2<<10, batches)
			s.batches[0] = specBatch{n: c.n, raw: c.raw}
			_, err := readAll(s.bytes(), small...)
			require.ErrorIs(t, err, snapshot.ErrCorrupt, name)
		}
	})
	t.Run("timestamp overflow", func(t *testing.T) {
		// The largest timestamp, then a delta of one.
		top := reconcile.Message{PubsubTopic: chat.PubsubTopic, ContentTopic: chat.ContentTopic, Timestamp: reconcile.MaxTimestamp}
		s := specOf(chat, 2<<10, [][]reconcile.Message{{top}})
		s.hdr.Count, s.hdr.Agg.Count = 2, 2
		s.hdr.Last = reconcile.Key{TS: reconcile.MaxTimestamp, Hash: reconcile.Hash{0: 0xff}}
		s.batches[0] = specBatch{n: 2, raw: append(encodeRaw([]reconcile.Message{top}), 0x01, 0, 0)}
		_, err := readAll(s.bytes(), small...)
		require.ErrorIs(t, err, snapshot.ErrInvalid)
		require.ErrorIs(t, err, snapshot.ErrCorrupt)
	})
}

// TestHostileSizes: sizes a file claims are checked before anything is
// allocated from them, and decompression stops at the declared size.
func TestHostileSizes(t *testing.T) {
	data, _ := smallFile(t)
	batches := batchesOf(t, data, small...)

	s := specOf(chat, 2<<10, batches)
	s.limit = 64 << 20
	_, err := readAll(s.bytes(), small...)
	require.ErrorIs(t, err, snapshot.ErrTooLarge, "a batch limit above ours")

	s = specOf(chat, 2<<10, batches)
	big := bytes.Repeat([]byte{0}, 4<<10)
	s.batches[0].raw = big
	_, err = readAll(s.bytes(), small...)
	require.ErrorIs(t, err, snapshot.ErrTooLarge, "a batch above the file's limit")

	s = specOf(chat, 2<<10, batches)
	s.batches[0].n = snapshot.MaxBatchMessages + 1
	_, err = readAll(s.bytes(), small...)
	require.ErrorIs(t, err, snapshot.ErrTooLarge, "too many messages")

	// A bomb: a few bytes that expand to 64 MiB, in a frame that claims
	// 2 KiB. The reader stops at 2 KiB.
	bomb := specEnc.EncodeAll(make([]byte, 64<<20), nil)
	s = specOf(chat, 2<<10, batches)
	s.batches[0].comp = bomb
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = readAll(s.bytes(), small...)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, snapshot.ErrCorrupt)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "bounded by the batch limit, not the bomb")
}

// TestReaderAfterError: an error repeats until Resume, and Close ends it.
func TestReaderAfterError(t *testing.T) {
	data, _ := smallFile(t)
	d := bytes.Clone(data)
	bs, err := readAll(data, small...)
	require.NoError(t, err)
	d[bs[1].Offset+50] ^= 1
	r, err := snapshot.NewReader(bytes.NewReader(d), small...)
	require.NoError(t, err)
	_, err = r.Next()
	require.NoError(t, err)
	_, err1 := r.Next()
	require.ErrorIs(t, err1, snapshot.ErrCorrupt)
	require.Contains(t, err1.Error(), "batch 1 at offset")
	_, err2 := r.Next()
	require.Equal(t, err1, err2)
	require.Equal(t, 1, r.State().Batches(), "the state stays at the failed batch")
	require.NoError(t, r.Close())
	_, err = r.Next()
	require.ErrorIs(t, err, snapshot.ErrClosed)
	require.NotErrorIs(t, err, io.EOF)
}
