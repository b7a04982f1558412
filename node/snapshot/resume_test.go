package snapshot_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node/snapshot"
)

// persist is what an importer does with a state: encode it, store it,
// decode it after a restart.
func persist(t testing.TB, st snapshot.State) snapshot.State {
	t.Helper()
	b, err := st.MarshalBinary()
	require.NoError(t, err)
	var out snapshot.State
	require.NoError(t, out.UnmarshalBinary(b))
	require.Equal(t, st, out)
	return out
}

// TestResumeEveryBatch stops after every batch, persists the state and
// resumes in a new reader: the rest of the batches are exactly those of
// an uninterrupted read, and the end is proven the same way.
func TestResumeEveryBatch(t *testing.T) {
	msgs := genMessages(30, chat, 400, 300)
	data, _ := write(t, chat, msgs, small...)
	all, err := readAll(data, small...)
	require.NoError(t, err)
	require.Greater(t, len(all), 10)

	for k := 0; k <= len(all); k++ {
		r1, err := snapshot.NewReader(bytes.NewReader(data), small...)
		require.NoError(t, err)
		for i := range k {
			b, err := r1.Next()
			require.NoError(t, err)
			require.Equal(t, i, b.Index)
		}
		st := persist(t, r1.State())
		require.Equal(t, k, st.Batches())
		require.NoError(t, r1.Close())

		r2, err := snapshot.NewReader(bytes.NewReader(data), small...)
		require.NoError(t, err)
		require.NoError(t, r2.Resume(st))
		rest, err := drain(r2)
		require.NoError(t, err, "resumed after %d batches", k)
		require.Equal(t, len(all)-k, len(rest))
		if len(rest) > 0 {
			require.Equal(t, all[k:], rest)
		}
		require.Equal(t, uint64(len(msgs)), r2.State().Count())

		// A state taken after io.EOF checks the trailer again.
		r3, err := snapshot.NewReader(bytes.NewReader(data), small...)
		require.NoError(t, err)
		require.NoError(t, r3.Resume(persist(t, r2.State())))
		_, err = r3.Next()
		require.ErrorIs(t, err, io.EOF)
	}
}

// TestResumeAfterTruncation: a read that stopped at the end of a partial
// download resumes on the complete file from the state it stopped at.
func TestResumeAfterTruncation(t *testing.T) {
	msgs := genMessages(31, chat, 300, 300)
	data, _ := write(t, chat, msgs, small...)
	partial := &lyingReader{bytes.NewReader(data[:len(data)/2]), int64(len(data))}
	r, err := snapshot.NewReader(partial, small...)
	require.NoError(t, err)
	got, err := drain(r)
	require.ErrorIs(t, err, snapshot.ErrTruncated)
	st := persist(t, r.State())
	require.Equal(t, len(got), st.Batches())

	r, err = snapshot.NewReader(bytes.NewReader(data), small...)
	require.NoError(t, err)
	require.NoError(t, r.Resume(st))
	rest, err := drain(r)
	require.NoError(t, err)
	requireSameMessages(t, msgs, messagesOf(append(got, rest...)))
}

// TestResumeOtherFile: a state names its file.
func TestResumeOtherFile(t *testing.T) {
	a, _ := write(t, chat, genMessages(32, chat, 200, 300), small...)
	b, _ := write(t, chat, genMessages(33, chat, 200, 300), small...)
	ra, err := snapshot.NewReader(bytes.NewReader(a), small...)
	require.NoError(t, err)
	_, err = ra.Next()
	require.NoError(t, err)

	rb, err := snapshot.NewReader(bytes.NewReader(b), small...)
	require.NoError(t, err)
	require.ErrorIs(t, rb.Resume(ra.State()), snapshot.ErrWrongFile)
	require.ErrorIs(t, rb.Resume(snapshot.State{}), snapshot.ErrWrongFile)
	// Same scope and messages, another creation time: another file.
	msgs := genMessages(32, chat, 200, 300)
	var f memFile
	w, err := snapshot.NewWriter(&f, chat, small...)
	require.NoError(t, err)
	for _, m := range msgs {
		require.NoError(t, w.Add(m))
	}
	_, err = w.Close()
	require.NoError(t, err)
	rc, err := snapshot.NewReader(bytes.NewReader(f.b), small...)
	require.NoError(t, err)
	require.ErrorIs(t, rc.Resume(ra.State()), snapshot.ErrWrongFile)
	// rb is still usable.
	_, err = drain(rb)
	require.NoError(t, err)
}

// TestResumeCarriesVerification: the running values in a state take part
// in the final proof, so a tampered state fails the read.
func TestResumeCarriesVerification(t *testing.T) {
	data, _ := write(t, chat, genMessages(34, chat, 300, 300), small...)
	r, err := snapshot.NewReader(bytes.NewReader(data), small...)
	require.NoError(t, err)
	_, err = r.Next()
	require.NoError(t, err)
	_, err = r.Next()
	require.NoError(t, err)
	enc, err := r.State().MarshalBinary()
	require.NoError(t, err)

	for name, c := range map[string]struct {
		at   int
		want error
	}{
		"sum":   {57, snapshot.ErrMismatch},
		"chain": {140, snapshot.ErrCorrupt},
	} {
		bad := bytes.Clone(enc)
		bad[c.at] ^= 1
		var st snapshot.State
		require.NoError(t, st.UnmarshalBinary(bad), name)
		r, err := snapshot.NewReader(bytes.NewReader(data), small...)
		require.NoError(t, err)
		require.NoError(t, r.Resume(st), name)
		_, err = drain(r)
		require.ErrorIs(t, err, c.want, name)
	}
}

// TestStateStrict: only encodings of states a reader could return decode.
func TestStateStrict(t *testing.T) {
	data, _ := write(t, chat, genMessages(35, chat, 300, 300), small...)
	r, err := snapshot.NewReader(bytes.NewReader(data), small...)
	require.NoError(t, err)
	_, err = r.Next()
	require.NoError(t, err)
	enc, err := r.State().MarshalBinary()
	require.NoError(t, err)
	start, err := snapshot.NewReader(bytes.NewReader(data), small...)
	require.NoError(t, err)
	zero, err := start.State().MarshalBinary()
	require.NoError(t, err)

	var st snapshot.State
	require.ErrorIs(t, st.UnmarshalBinary(nil), snapshot.ErrCorrupt)
	require.ErrorIs(t, st.UnmarshalBinary(enc[:len(enc)-1]), snapshot.ErrCorrupt)
	require.ErrorIs(t, st.UnmarshalBinary(append(bytes.Clone(enc), 0)), snapshot.ErrCorrupt)
	v2 := bytes.Clone(enc)
	v2[0] = 2
	require.ErrorIs(t, st.UnmarshalBinary(v2), snapshot.ErrFormat)
	for name, f := range map[string]func(b []byte){
		"offset huge":           func(b []byte) { b[33] = 0x80 },
		"offset inside header":  func(b []byte) { clear(b[33:41]) },
		"batches without count": func(b []byte) { clear(b[49:57]) },
		"more batches than fit": func(b []byte) { b[41] = 0x10 },
	} {
		bad := bytes.Clone(enc)
		f(bad)
		require.ErrorIs(t, st.UnmarshalBinary(bad), snapshot.ErrCorrupt, name)
	}
	for name, f := range map[string]func(b []byte){
		"sum before any message": func(b []byte) { b[57] = 1 },
		"key before any message": func(b []byte) { b[100] = 1 },
		"count without batches":  func(b []byte) { b[56] = 1 },
	} {
		bad := bytes.Clone(zero)
		f(bad)
		require.ErrorIs(t, st.UnmarshalBinary(bad), snapshot.ErrCorrupt, name)
	}
	require.Equal(t, snapshot.State{}, st, "a failed decode leaves the state alone")

	// Decodes, but is no point of this file.
	for name, f := range map[string]func(b []byte){
		"offset past the batches": func(b []byte) { b[38] = 0x7f },
		"count above the header":  func(b []byte) { b[53] = 1 },
	} {
		bad := bytes.Clone(enc)
		f(bad)
		require.NoError(t, st.UnmarshalBinary(bad), name)
		require.ErrorIs(t, r.Resume(st), snapshot.ErrWrongFile, name)
	}
}
