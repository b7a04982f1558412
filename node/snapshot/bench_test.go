package snapshot_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

// benchMessages are 100,000 messages with 256-byte random payloads (the
// import the package is sized for, and the worst case for zstd) and
// their total pb.Message size.
func benchMessages() ([]reconcile.Message, int64) {
	rng := rand.New(rand.NewPCG(50, 1))
	msgs := make([]reconcile.Message, 100_000)
	var size int64
	for i := range msgs {
		m := reconcile.Message{PubsubTopic: chat.PubsubTopic, ContentTopic: chat.ContentTopic,
			Payload: make([]byte, 256), Timestamp: 1_700_000_000_000_000_000 + int64(i)*1000}
		for j := range m.Payload {
			m.Payload[j] = byte(rng.Uint32())
		}
		msgs[i] = m
		size += int64(m.ToPB().Size())
	}
	return msgs, size
}

// BenchmarkWrite exports 100,000 messages; MB/s counts their pb.Message
// size.
func BenchmarkWrite(b *testing.B) {
	msgs, size := benchMessages()
	b.SetBytes(size)
	b.ReportAllocs()
	f := memFile{b: make([]byte, 0, 2*size)}
	for b.Loop() {
		f.b, f.pos = f.b[:0], 0
		w, err := snapshot.NewWriter(&f, chat)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs {
			if err := w.Add(m); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(len(f.b))/float64(size), "file/raw")
}

// BenchmarkRead imports the same file, verifying every message; MB/s
// counts the messages' pb.Message size.
func BenchmarkRead(b *testing.B) { benchReader(b, (*snapshot.Reader).Next) }

// BenchmarkVerify checks the same file with Verify, as an import's
// verification pass does: no messages kept, buffers reused.
func BenchmarkVerify(b *testing.B) { benchReader(b, (*snapshot.Reader).Verify) }

// benchReader reads the benchmark's file to its end with step.
func benchReader(b *testing.B, step func(*snapshot.Reader) (snapshot.Batch, error)) {
	msgs, size, f := benchFile(b)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		r, err := snapshot.NewReader(bytes.NewReader(f.b))
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := step(r)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if r.State().Count() != uint64(len(msgs)) {
			b.Fatalf("%d messages, want %d", r.State().Count(), len(msgs))
		}
		r.Close()
	}
	b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// benchFile returns the benchmark's messages, their pb.Message size and
// a snapshot file of them.
func benchFile(b *testing.B) ([]reconcile.Message, int64, *memFile) {
	msgs, size := benchMessages()
	f := &memFile{}
	w, err := snapshot.NewWriter(f, chat)
	require.NoError(b, err)
	for _, m := range msgs {
		require.NoError(b, w.Add(m))
	}
	_, err = w.Close()
	require.NoError(b, err)
	return msgs, size, f
}
