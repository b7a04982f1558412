package snapshot_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

// readTrace reads data to its end with Next, or with Verify, and returns
// what the reader said at each step: each batch's place and size with the
// state after it, then the error that ended the read (io.EOF included).
func readTrace(data []byte, verify bool, opts ...snapshot.Option) []string {
	r, err := snapshot.NewReader(bytes.NewReader(data), opts...)
	if err != nil {
		return []string{err.Error()}
	}
	defer r.Close()
	var out []string
	for {
		var b snapshot.Batch
		if verify {
			b, err = r.Verify()
			if err == nil && (b.Messages != nil || b.Keys != nil) {
				return append(out, "Verify returned messages")
			}
		} else {
			b, err = r.Next()
		}
		if err != nil {
			return append(out, err.Error())
		}
		st, _ := r.State().MarshalBinary()
		out = append(out, fmt.Sprintf("batch %d [%d,%d) %d bytes, state %x", b.Index, b.Offset, b.Next, b.Size, st))
	}
}

// requireVerifyAgrees checks that Verify reads data exactly as Next does.
func requireVerifyAgrees(t testing.TB, data []byte, opts ...snapshot.Option) {
	t.Helper()
	require.Equal(t, readTrace(data, false, opts...), readTrace(data, true, opts...))
}

// noiseFile writes n messages of incompressible 256-byte payloads with
// the default options: large batches, stored as raw frames, whose chain
// digests a reader computes while it decodes them.
func noiseFile(t testing.TB, n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 9))
	msgs := make([]reconcile.Message, n)
	for i := range msgs {
		msgs[i] = reconcile.Message{PubsubTopic: chat.PubsubTopic, ContentTopic: chat.ContentTopic,
			Timestamp: 1_700_000_000_000_000_000 + int64(i)*1000, Payload: make([]byte, 256)}
		for j := range msgs[i].Payload {
			msgs[i].Payload[j] = byte(rng.Uint32())
		}
	}
	data, _ := write(t, chat, sortByKey(msgs))
	return data
}

// TestVerifyAgreesWithNext: on valid, truncated and damaged files, small
// batches and large, Verify returns what Next returns, less the
// messages, and fails where and as Next fails.
func TestVerifyAgreesWithNext(t *testing.T) {
	small1, _ := smallFile(t)
	large := noiseFile(t, 12_000) // three batches of 1 MiB and a short one
	for _, c := range []struct {
		data []byte
		opts []snapshot.Option
	}{{small1, small}, {large, nil}} {
		requireVerifyAgrees(t, c.data, c.opts...)
		rng := rand.New(rand.NewPCG(5, 5))
		for range 40 {
			d := bytes.Clone(c.data)
			d[rng.IntN(len(d))] ^= byte(1 + rng.IntN(255))
			requireVerifyAgrees(t, d, c.opts...)
			requireVerifyAgrees(t, c.data[:rng.IntN(len(c.data))], c.opts...)
		}
	}
}

// TestDamagedLargeBatch: damage inside a large batch's payload, whose
// digest is computed beside its decoding, fails the batch as a chain
// mismatch, whatever the damage did to the content, and leaves the state
// before it.
func TestDamagedLargeBatch(t *testing.T) {
	data := noiseFile(t, 12_000)
	bs, err := readAll(data)
	require.NoError(t, err)
	require.Greater(t, len(bs), 2)
	b := bs[1]
	for _, at := range []int64{b.Offset + 45, b.Offset + 45 + 9, (b.Offset + b.Next) / 2, b.Next - 1} {
		d := bytes.Clone(data)
		d[at] ^= 0x40
		for _, verify := range []bool{false, true} {
			r, err := snapshot.NewReader(bytes.NewReader(d))
			require.NoError(t, err)
			_, err = r.Next()
			require.NoError(t, err)
			before := r.State()
			if verify {
				_, err = r.Verify()
			} else {
				_, err = r.Next()
			}
			require.ErrorIs(t, err, snapshot.ErrCorrupt, "byte %d", at)
			require.ErrorContains(t, err, "chain digest mismatch", "byte %d", at)
			require.Equal(t, before, r.State())
			require.NoError(t, r.Close())
		}
	}
}
