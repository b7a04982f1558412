package protocol

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/reconcile"
)

var batcherScope = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/app/1/batcher/proto"}

// stored returns the encoding a store keeps for a message of batcherScope.
func stored(t testing.TB, payload []byte, ts int64) []byte {
	m := reconcile.Message{PubsubTopic: batcherScope.PubsubTopic, ContentTopic: batcherScope.ContentTopic,
		Payload: payload, Meta: []byte("m"), Timestamp: ts}
	raw, err := m.ToPB().Marshal()
	require.NoError(t, err)
	return raw
}

func TestWithoutTopicsDropsThemAndKeepsTheRest(t *testing.T) {
	raw := stored(t, []byte("hello"), 42)
	bare := withoutTopics(raw)
	require.Less(t, len(bare), len(raw))
	require.True(t, bytes.HasSuffix(raw, bare), "a suffix, not a copy")
	var m pb.Message
	require.NoError(t, m.Unmarshal(bare))
	require.Empty(t, m.PubsubTopic)
	require.Empty(t, m.ContentTopic)
	require.Equal(t, []byte("hello"), m.Payload)
	require.Equal(t, []byte("m"), m.Meta)
	require.Equal(t, int64(42), m.Timestamp)

	// Topics that are not the leading fields stay: still a valid message.
	late := append(append([]byte{}, bare...), raw[:len(raw)-len(bare)]...)
	require.Equal(t, late, withoutTopics(late))
	// A length past the end: returned whole, for the client to refuse.
	require.Equal(t, []byte{0x0a, 0x7f, 1}, withoutTopics([]byte{0x0a, 0x7f, 1}))
	require.Empty(t, withoutTopics(nil))
}

// FuzzWithoutTopics: on any bytes, a suffix of its input, and one that
// starts with neither topic field.
func FuzzWithoutTopics(f *testing.F) {
	f.Add(stored(f, []byte("x"), 1))
	f.Add([]byte{0x0a, 0x00, 0x12, 0x00})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := withoutTopics(raw)
		require.True(t, bytes.HasSuffix(raw, out))
		if len(out) < len(raw) && len(out) > 0 {
			require.NotContains(t, []byte{0x0a, 0x12}, out[0])
		}
	})
}

func TestBatchFrameEncodesAsCatchUpBatch(t *testing.T) {
	var batch bytes.Buffer
	for i := range 3 {
		batch.WriteByte(0x0a)
		raw := stored(t, []byte{byte(i)}, int64(i+1))
		batch.WriteByte(byte(len(raw)))
		batch.Write(raw)
	}
	for _, f := range []batchFrame{
		{}, {done: true}, {batch: batch.Bytes()}, {batch: batch.Bytes(), done: true},
		{zstd: []byte{1, 2, 3}}, {zstd: bytes.Repeat([]byte{7}, 300), done: true},
	} {
		want := &pb.CatchUpBatch{Done: f.done, Zstd: f.zstd}
		if f.batch != nil {
			want.Batch = &pb.MessageBatch{}
			require.NoError(t, want.Batch.Unmarshal(f.batch))
		}
		wb, err := want.Marshal()
		require.NoError(t, err)
		require.Equal(t, wb, bytes.Join(f.parts(), nil))
	}
}

// TestBatcherCompressesOnlyWhereItPays: text shrinks and goes compressed;
// random payloads do not, and the batches after one that did not go
// plain without a try until the next probe.
func TestBatcherCompressesOnlyWhereItPays(t *testing.T) {
	fill := func(b *batcher, random bool) {
		b.buf = b.buf[:0]
		for i := range 200 {
			p := bytes.Repeat([]byte("the quick brown fox "), 10)
			if random {
				_, _ = rand.Read(p)
			}
			b.add(withoutTopics(stored(t, p, int64(i+1))))
		}
	}
	b := &batcher{zstd: true}
	fill(b, false)
	require.NotNil(t, b.compressed(), "text pays")
	fill(b, true)
	require.Nil(t, b.compressed(), "random payloads do not")
	fill(b, false)
	for range probeEvery {
		require.Nil(t, b.compressed(), "no try until the next probe")
	}
	require.NotNil(t, b.compressed(), "the probe finds it pays again")

	// A large batch is judged by its first probeSample bytes: random
	// ones there are not compressed, whatever follows.
	big := &batcher{zstd: true}
	for i := 0; len(big.buf) < 4*probeSample; i++ {
		p := bytes.Repeat([]byte("the quick brown fox "), 10)
		if len(big.buf) < probeSample {
			_, _ = rand.Read(p)
		}
		big.add(withoutTopics(stored(t, p, int64(i+1))))
	}
	require.Nil(t, big.compressed(), "the sample does not pay")
	require.Equal(t, probeEvery, big.skip)
	big.skip = 0
	copy(big.buf, bytes.Repeat([]byte{'x'}, probeSample)) // text throughout now
	require.NotNil(t, big.compressed(), "the sample pays, and so does the whole")

	plain := &batcher{zstd: false}
	fill(plain, false)
	require.Nil(t, plain.compressed(), "a client that takes no zstd gets none")
	require.Nil(t, (&batcher{zstd: true}).compressed(), "an empty batch")
}
