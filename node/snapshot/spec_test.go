package snapshot_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

// spec encodes files straight from the format description in doc.go,
// apart from the package, so that tests can build files a Writer never
// writes (wrong order, forged headers, hostile sizes) whose checksums are
// all right, and so that the description is checked against the Writer.
type spec struct {
	hdr     snapshot.Header // Scope, Created, Count, Agg.Sum, First, Last
	limit   uint32
	batches []specBatch
	// Trailer fields; the true values unless the test changes them.
	trailerBatches, trailerCount *uint64
}

// specBatch is a batch's raw content and its message count; comp, when
// set, replaces the compressed payload.
type specBatch struct {
	n    uint32
	raw  []byte
	comp []byte
}

// specOf describes the file a Writer would write for these batches.
func specOf(sc reconcile.Scope, limit int, batches [][]reconcile.Message) *spec {
	s := &spec{hdr: snapshot.Header{Scope: sc, Created: created}, limit: uint32(limit)}
	var all []reconcile.Message
	for _, b := range batches {
		s.batches = append(s.batches, specBatch{n: uint32(len(b)), raw: encodeRaw(b)})
		all = append(all, b...)
	}
	s.hdr.Agg = aggregate(all)
	s.hdr.Count = s.hdr.Agg.Count
	if len(all) > 0 {
		s.hdr.First, s.hdr.Last = all[0].Key(), all[len(all)-1].Key()
	}
	return s
}

// encodeRaw encodes messages as a batch's raw content.
func encodeRaw(msgs []reconcile.Message) []byte {
	var b []byte
	var prev int64
	for i, m := range msgs {
		ts := uint64(m.Timestamp)
		if i > 0 {
			ts -= uint64(prev)
		}
		prev = m.Timestamp
		b = binary.AppendUvarint(b, ts)
		b = binary.AppendUvarint(b, uint64(len(m.Payload)))
		b = append(b, m.Payload...)
		b = binary.AppendUvarint(b, uint64(len(m.Meta)))
		b = append(b, m.Meta...)
	}
	return b
}

var specEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
	zstd.WithSingleSegment(true), zstd.WithEncoderCRC(false))

// specRawFrame is a zstd frame of raw blocks (RFC 8878): magic, a
// descriptor for a 4-byte content size and a single segment, the size,
// then blocks of 128 KiB, the last shorter and flagged last.
func specRawFrame(raw []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0xFD2FB528)
	b = append(b, 0xa0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(raw)))
	for {
		n := min(len(raw), 128<<10)
		h := n << 3
		if n == len(raw) {
			h |= 1
		}
		b = append(append(b, byte(h), byte(h>>8), byte(h>>16)), raw[:n]...)
		if raw = raw[n:]; h&1 == 1 {
			return b
		}
	}
}

// bytes returns the file. Payloads follow the writer's policy in doc.go:
// a batch zstd shrinks by less than 1/16 makes the next 15 go out as raw
// frames.
func (s *spec) bytes() []byte {
	comps := make([][]byte, len(s.batches))
	size := 160 + len(s.hdr.Scope.PubsubTopic) + len(s.hdr.Scope.ContentTopic) + 49
	skip := 0
	for i, b := range s.batches {
		switch {
		case skip > 0:
			comps[i] = specRawFrame(b.raw)
			skip--
		default:
			comps[i] = specEnc.EncodeAll(b.raw, nil)
			if len(comps[i]) > len(b.raw)-len(b.raw)/16 {
				skip = 15
			}
		}
		if b.comp != nil {
			comps[i] = b.comp
		}
		size += 45 + len(comps[i])
	}
	h := []byte("SSYNSNAP")
	h = binary.BigEndian.AppendUint16(h, 1)
	h = binary.BigEndian.AppendUint16(h, 0)
	h = binary.BigEndian.AppendUint16(h, uint16(len(s.hdr.Scope.PubsubTopic)))
	h = binary.BigEndian.AppendUint16(h, uint16(len(s.hdr.Scope.ContentTopic)))
	h = append(h, s.hdr.Scope.PubsubTopic...)
	h = append(h, s.hdr.Scope.ContentTopic...)
	h = binary.BigEndian.AppendUint64(h, uint64(s.hdr.Created.UnixNano()))
	h = binary.BigEndian.AppendUint32(h, s.limit)
	chain := sha256.Sum256(h)
	h = binary.BigEndian.AppendUint64(h, uint64(size))
	h = binary.BigEndian.AppendUint64(h, s.hdr.Count)
	h = append(h, s.hdr.Agg.Sum.Bytes()...)
	h = append(h, s.hdr.First.Bytes()...)
	h = append(h, s.hdr.Last.Bytes()...)
	h = binary.BigEndian.AppendUint32(h, crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli)))

	out := h
	var count uint64
	for i, b := range s.batches {
		f := []byte{'B'}
		f = binary.BigEndian.AppendUint32(f, b.n)
		f = binary.BigEndian.AppendUint32(f, uint32(len(b.raw)))
		f = binary.BigEndian.AppendUint32(f, uint32(len(comps[i])))
		d := sha256.New()
		d.Write(chain[:])
		d.Write(f)
		d.Write(comps[i])
		d.Sum(chain[:0])
		out = append(append(append(out, f...), chain[:]...), comps[i]...)
		count += uint64(b.n)
	}
	nb := uint64(len(s.batches))
	if s.trailerBatches != nil {
		nb = *s.trailerBatches
	}
	if s.trailerCount != nil {
		count = *s.trailerCount
	}
	out = append(out, 'E')
	out = binary.BigEndian.AppendUint64(out, nb)
	out = binary.BigEndian.AppendUint64(out, count)
	return append(out, chain[:]...)
}

// batchesOf reads a valid file's batches as message lists.
func batchesOf(t testing.TB, data []byte, opts ...snapshot.Option) [][]reconcile.Message {
	t.Helper()
	bs, err := readAll(data, opts...)
	require.NoError(t, err)
	var out [][]reconcile.Message
	for _, b := range bs {
		out = append(out, b.Messages)
	}
	return out
}

// TestSpecMatchesWriter holds the format description to the Writer: a
// file encoded from doc.go alone equals, byte for byte, the Writer's.
func TestSpecMatchesWriter(t *testing.T) {
	for _, n := range []int{0, 1, 300} {
		msgs := genMessages(uint64(n), chat, n, 300)
		data, _ := write(t, chat, msgs, small...)
		s := specOf(chat, 2<<10, batchesOf(t, data, small...))
		require.Equal(t, data, s.bytes(), "%d messages", n)
	}
}

// TestSpecMatchesWriterAdaptive holds the description of adaptive
// compression to the Writer, over content that changes from
// incompressible to compressible and back, and checks that raw frames
// (zstd's raw blocks, batches over 128 KiB among them) are what the
// Writer wrote for incompressible batches.
func TestSpecMatchesWriterAdaptive(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var msgs []reconcile.Message
	for i := range 3000 {
		m := reconcile.Message{PubsubTopic: chat.PubsubTopic, ContentTopic: chat.ContentTopic,
			Timestamp: 1_700_000_000_000_000_000 + int64(i), Payload: make([]byte, 200)}
		for j := range m.Payload {
			if i/1000 == 1 {
				m.Payload[j] = 'a' + byte(j%3) // compressible in the middle third
			} else {
				m.Payload[j] = byte(rng.Uint32())
			}
		}
		msgs = append(msgs, m)
	}
	msgs = sortByKey(msgs)
	for _, limit := range []int{2 << 10, 300 << 10} {
		opts := []snapshot.Option{snapshot.WithMaxMessageSize(1 << 10), snapshot.WithMaxBatchSize(limit)}
		data, _ := write(t, chat, msgs, opts...)
		batches := batchesOf(t, data, opts...)
		require.Equal(t, data, specOf(chat, limit, batches).bytes(), "limit %d", limit)
		require.Greater(t, bytes.Count(data, specRawFrame(nil)[:5]), len(batches)/2, "raw frames, limit %d", limit)
	}
}
