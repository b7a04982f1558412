package snapshot_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// seedFiles are FuzzReader's seeds: files the reader accepts with the
// small options, and damaged ones near them.
func seedFiles(t testing.TB) map[string][]byte {
	msgs := genMessages(40, chat, 40, 150)
	valid, _ := write(t, chat, msgs, small...)
	empty, _ := write(t, chat, nil, small...)
	one, _ := write(t, chat, msgs[:1], small...)
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 0x10
	batches := batchesOf(t, valid, small...)
	swapped := specOf(chat, 2<<10, batches)
	swapped.batches[0], swapped.batches[1] = swapped.batches[1], swapped.batches[0]
	// Incompressible payloads: raw frames after the first batch.
	noise := rand.New(rand.NewPCG(40, 2))
	incompressible := make([]reconcile.Message, 0, 40)
	for i := range 40 {
		m := reconcile.Message{PubsubTopic: chat.PubsubTopic, ContentTopic: chat.ContentTopic,
			Timestamp: 1_700_000_000_000_000_000 + int64(i), Payload: make([]byte, 150)}
		for j := range m.Payload {
			m.Payload[j] = byte(noise.Uint32())
		}
		incompressible = append(incompressible, m)
	}
	raw, _ := write(t, chat, sortByKey(incompressible), small...)
	var unfinished memFile
	w, err := snapshot.NewWriter(&unfinished, chat, append(small, snapshot.WithCreated(created))...)
	require.NoError(t, err)
	require.NoError(t, w.Add(msgs[0]))
	return map[string][]byte{
		"valid":      valid,
		"empty":      empty,
		"one":        one,
		"truncated":  valid[:len(valid)/2],
		"flipped":    flipped,
		"swapped":    swapped.bytes(),
		"unfinished": unfinished.b,
		"raw":        raw,
	}
}

// FuzzReader reads arbitrary bytes as a snapshot: the reader never
// panics, fails only with its sentinels, never returns a batch or
// message beyond its limits or one that does not verify, and returns
// io.EOF only for content equal to the header's claims; Verify reads
// the bytes exactly as Next does.
func FuzzReader(f *testing.F) {
	for _, d := range seedFiles(f) {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		requireVerifyAgrees(t, data, small...)
		r, err := snapshot.NewReader(bytes.NewReader(data), small...)
		if err != nil {
			require.True(t, anySentinel(err), "%v", err)
			return
		}
		defer r.Close()
		h := r.Header()
		var agg reconcile.Aggregate
		var last reconcile.Key
		for {
			b, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				require.True(t, anySentinel(err), "%v", err)
				return
			}
			require.LessOrEqual(t, b.Size, 2<<10)
			require.NotEmpty(t, b.Messages)
			require.LessOrEqual(t, len(b.Messages), snapshot.MaxBatchMessages)
			for _, m := range b.Messages {
				require.NoError(t, m.Validate())
				require.Equal(t, h.Scope, m.Scope())
				require.LessOrEqual(t, m.ToPB().Size(), 1<<10)
				k := m.Key()
				if agg.Count == 0 {
					require.Equal(t, h.First, k)
				} else {
					require.True(t, last.Less(k))
				}
				require.False(t, h.Last.Less(k))
				agg, last = agg.AddHash(&k.Hash), k
			}
		}
		require.Equal(t, h.Agg, agg)
		require.Equal(t, h.Count, agg.Count)
		if agg.Count > 0 {
			require.Equal(t, h.Last, last)
		}
	})
}

// stateFile is the file FuzzState's states belong to.
func stateFile(t testing.TB) []byte {
	data, _ := write(t, chat, genMessages(41, chat, 60, 150), small...)
	return data
}

// seedStates are FuzzState's seeds: the state of stateFile before each
// batch and at its end.
func seedStates(t testing.TB) map[string][]byte {
	r, err := snapshot.NewReader(bytes.NewReader(stateFile(t)), small...)
	require.NoError(t, err)
	out := map[string][]byte{}
	for i := 0; ; i++ {
		b, err := r.State().MarshalBinary()
		require.NoError(t, err)
		out[fmt.Sprintf("batch%d", i)] = b
		if _, err := r.Next(); err == io.EOF {
			return out
		}
		require.NoError(t, err)
	}
}

// FuzzState decodes arbitrary bytes as a State: only canonical encodings
// decode, and a state Resume accepts never makes the reader panic or
// return a message that does not verify.
func FuzzState(f *testing.F) {
	for _, b := range seedStates(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 161))
	data := stateFile(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var st snapshot.State
		if err := st.UnmarshalBinary(b); err != nil {
			require.True(t, errors.Is(err, snapshot.ErrCorrupt) || errors.Is(err, snapshot.ErrFormat), "%v", err)
			require.Equal(t, snapshot.State{}, st)
			return
		}
		out, err := st.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, b, out, "one encoding per state")

		r, err := snapshot.NewReader(bytes.NewReader(data), small...)
		require.NoError(t, err)
		defer r.Close()
		if err := r.Resume(st); err != nil {
			require.ErrorIs(t, err, snapshot.ErrWrongFile)
			return
		}
		bs, err := drain(r)
		if err != nil {
			require.True(t, anySentinel(err), "%v", err)
		}
		for _, m := range messagesOf(bs) {
			require.NoError(t, m.Validate())
			require.Equal(t, chat, m.Scope())
		}
	})
}

// TestFuzzCorpus writes the seed corpus under testdata/fuzz when run with
// -update-corpus, and otherwise checks that it is there.
func TestFuzzCorpus(t *testing.T) {
	sets := map[string]map[string][]byte{"FuzzReader": seedFiles(t), "FuzzState": seedStates(t)}
	for fuzz, seeds := range sets {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		for name, b := range seeds {
			path := filepath.Join(dir, name)
			entry := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
			if *updateCorpus {
				require.NoError(t, os.MkdirAll(dir, 0o755))
				require.NoError(t, os.WriteFile(path, entry, 0o644))
				continue
			}
			_, err := os.Stat(path)
			require.NoError(t, err, "run go test -run TestFuzzCorpus -update-corpus")
		}
	}
}
