package node

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// The records fuzz targets read arbitrary bytes where the store keeps
// its own progress records: a record that no writer produced (a damaged
// disk, a bug in an older version) must be refused or do no harm.

var updateRecordCorpus = flag.Bool("update-record-corpus", false,
	"rewrite the record fuzz targets' seed corpus in testdata/fuzz")

var recordFuzzScope = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/fuzz/1/records/proto"}

// recordFuzzPeer returns a peer ID derived from seed.
func recordFuzzPeer(t testing.TB, seed byte) peer.ID {
	priv, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	require.NoError(t, err)
	id, err := peer.IDFromPrivateKey(priv)
	require.NoError(t, err)
	return id
}

// FuzzDecodeCursor decodes arbitrary bytes as the catch-up cursor record
// of the range ending at hi. Only records encodeCursor writes decode: a
// decoded cursor has Lo < Hi and Lo <= After < Hi (After is the key of a
// stored message of the range, or Lo), a valid peer ID or none, and
// encodes back to the same bytes; anything else is errBadCursor. Through
// the store, Cursors returns the cursor or fails with ErrCorrupt.
func FuzzDecodeCursor(f *testing.F) {
	d := dssync.MutexWrap(ds.NewMapDatastore())
	s, err := OpenStore(context.Background(), d)
	require.NoError(f, err)
	f.Cleanup(func() { s.Close() })
	require.NoError(f, s.AddScope(context.Background(), recordFuzzScope))
	st, ok := s.state(recordFuzzScope)
	require.True(f, ok)
	f.Fuzz(func(t *testing.T, hiBytes, rec []byte) {
		hi, err := reconcile.KeyFromBytes(hiBytes)
		if err != nil {
			return // not a key the record's name can hold
		}
		c, err := decodeCursor(hi, rec)
		if err != nil {
			require.ErrorIs(t, err, errBadCursor)
		} else {
			require.Equal(t, hi, c.Hi)
			require.True(t, c.Lo.Less(c.Hi), "lo %v, hi %v", c.Lo, c.Hi)
			require.False(t, c.After.Less(c.Lo), "after %v below lo %v", c.After, c.Lo)
			require.True(t, c.After.Less(c.Hi), "after %v at or past hi %v", c.After, c.Hi)
			require.False(t, c.Done)
			if c.Peer != "" {
				_, perr := peer.IDFromBytes([]byte(c.Peer))
				require.NoError(t, perr)
			}
			require.Equal(t, rec, encodeCursor(c), "one encoding per cursor")
		}

		ctx := context.Background()
		key := cursorKey(st.idHex, hi)
		require.NoError(t, d.Put(ctx, key, rec))
		defer func() { require.NoError(t, d.Delete(ctx, key)) }()
		curs, cerr := protocolStore{s}.Cursors(ctx, recordFuzzScope)
		if err != nil {
			require.ErrorIs(t, cerr, ErrCorrupt)
			return
		}
		require.NoError(t, cerr)
		require.Equal(t, []protocol.Cursor{c}, curs)
	})
}

// recordCursorSeeds are FuzzDecodeCursor's seeds: the records of a fresh,
// a resumed and a whole-space range, with and without a peer, and
// damaged ones.
func recordCursorSeeds(t testing.TB) map[string][]any {
	lo, hi := reconcile.TimeBound(1000), reconcile.TimeBound(2000)
	after := reconcile.Key{TS: 1500, Hash: reconcile.Hash{0xab, 0xcd}}
	p := recordFuzzPeer(t, 1)
	fresh := encodeCursor(protocol.Cursor{Lo: lo, Hi: hi, After: lo})
	resumed := encodeCursor(protocol.Cursor{Peer: p, Lo: lo, Hi: hi, After: after})
	whole := encodeCursor(protocol.Cursor{Peer: p, Lo: reconcile.Key{}, Hi: reconcile.End, After: after})
	return map[string][]any{
		"fresh":       {hi.Bytes(), fresh},
		"resumed":     {hi.Bytes(), resumed},
		"whole":       {reconcile.End.Bytes(), whole},
		"format":      {hi.Bytes(), append([]byte{cursorFormat + 1}, fresh[1:]...)},
		"truncated":   {hi.Bytes(), resumed[:len(resumed)-1]},
		"bad-peer":    {hi.Bytes(), append(append([]byte{cursorFormat, 3}, 'a', 'b', 'c'), fresh[2:]...)},
		"lo-above-hi": {lo.Bytes(), fresh},
		// No writer saves a cursor at or past its range's end (After is
		// the key of a stored message of the range, or Lo), nor a peer ID
		// length in more varint bytes than it takes.
		"after-at-hi":   {hi.Bytes(), encodeCursor(protocol.Cursor{Lo: lo, Hi: hi, After: hi})},
		"after-past-hi": {hi.Bytes(), encodeCursor(protocol.Cursor{Peer: p, Lo: lo, Hi: hi, After: reconcile.End})},
		"long-varint":   {hi.Bytes(), append([]byte{cursorFormat, 0x80, 0x00}, fresh[2:]...)},
		"empty":         {hi.Bytes(), []byte{}},
	}
}

// recordFuzzFile is an in-memory io.WriteSeeker for the snapshot writer.
type recordFuzzFile struct {
	b   []byte
	off int
}

func (f *recordFuzzFile) Write(p []byte) (int, error) {
	if n := f.off + len(p); n > len(f.b) {
		f.b = append(f.b, make([]byte, n-len(f.b))...)
	}
	copy(f.b[f.off:], p)
	f.off += len(p)
	return len(p), nil
}

func (f *recordFuzzFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += int64(f.off)
	case io.SeekEnd:
		off += int64(len(f.b))
	}
	if off < 0 {
		return 0, errors.New("seek before the start")
	}
	f.off = int(off)
	return off, nil
}

// recordFuzzOptions make snapshots of many small batches.
var recordFuzzOptions = []snapshot.Option{snapshot.WithMaxMessageSize(1 << 10), snapshot.WithMaxBatchSize(2 << 10)}

// recordFuzzSnapshot returns a snapshot of n messages of sc, the same
// bytes on every call, and its messages.
func recordFuzzSnapshot(t testing.TB, sc reconcile.Scope, n int) ([]byte, []reconcile.Message) {
	msgs := make([]reconcile.Message, n)
	for i := range msgs {
		msgs[i] = reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic,
			Payload: fmt.Appendf(nil, "message %d: %x", i, bytes.Repeat([]byte{byte(i * 37)}, 40+i%50)), Timestamp: 1_700_000_000_000_000_000 + int64(i/3)}
	}
	slices.SortFunc(msgs, func(a, b reconcile.Message) int { k := b.Key(); return a.Key().Compare(k) })
	var file recordFuzzFile
	w, err := snapshot.NewWriter(&file, sc, append(slices.Clone(recordFuzzOptions), snapshot.WithCreated(time.Unix(1_700_000_000, 0)))...)
	require.NoError(t, err)
	for _, m := range msgs {
		require.NoError(t, w.Add(m))
	}
	_, err = w.Close()
	require.NoError(t, err)
	return file.b, msgs
}

// recordFuzzStates returns the states of a reader of file before each
// batch and at its end, and the messages read before each.
func recordFuzzStates(t testing.TB, file []byte) ([]snapshot.State, []int) {
	r, err := snapshot.NewReader(bytes.NewReader(file), recordFuzzOptions...)
	require.NoError(t, err)
	defer r.Close()
	var states []snapshot.State
	var counts []int
	for {
		states = append(states, r.State())
		counts = append(counts, int(r.State().Count()))
		if _, err := r.Next(); errors.Is(err, io.EOF) {
			return states, counts
		}
		require.NoError(t, err)
	}
}

// FuzzImportRecord imports a good snapshot into a store whose import
// record of the scope holds arbitrary bytes, as after a crash that left a
// damaged record. Starting over is always safe, so the record may only
// decide where the import goes on: the import succeeds and deletes the
// record; if the record is not one of the states a reader of this file
// passes through at its batch boundaries, it starts over and stores every
// message; if it is, it stores the file's messages from that boundary on,
// and reports the rest as resumed.
func FuzzImportRecord(f *testing.F) {
	file, msgs := recordFuzzSnapshot(f, recordFuzzScope, 120)
	states, counts := recordFuzzStates(f, file)
	keys := make([]reconcile.Key, len(msgs))
	for i, m := range msgs {
		keys[i] = m.Key()
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		ctx := context.Background()
		d := dssync.MutexWrap(ds.NewMapDatastore())
		s, err := OpenStore(ctx, d)
		require.NoError(t, err)
		defer s.Close()
		require.NoError(t, s.AddScope(ctx, recordFuzzScope))
		// A message before the file's, so that the scope is not empty
		// and the import takes its two passes, which resume.
		extra := reconcile.Message{PubsubTopic: recordFuzzScope.PubsubTopic, ContentTopic: recordFuzzScope.ContentTopic,
			Payload: []byte("extra"), Timestamp: 1}
		_, err = s.Put(ctx, extra)
		require.NoError(t, err)
		st, _ := s.state(recordFuzzScope)
		require.NoError(t, d.Put(ctx, importRecordKey(st.idHex), rec))

		rep, err := s.Import(ctx, bytes.NewReader(file), recordFuzzOptions...)
		require.NoError(t, err, "a good file fails to import over the record %x", rec)
		_, err = d.Get(ctx, importRecordKey(st.idHex))
		require.ErrorIs(t, err, ds.ErrNotFound, "the import record outlives the import")

		// Where the import went on: the start, unless the record is, byte
		// for byte, the state of a reader of this file at one of its
		// batch boundaries (a record damaged on disk, or of another file,
		// is not trusted), and then that boundary.
		from := 0
		for i, st := range states {
			if b, err := st.MarshalBinary(); err == nil && bytes.Equal(b, rec) {
				from = counts[i]
			}
		}
		require.Equal(t, from > 0, rep.Resumed)
		require.Equal(t, from, rep.ResumedMessages)
		require.Equal(t, len(msgs)-from, rep.Added)
		require.Zero(t, rep.Duplicates+rep.Rejected)
		stored := []reconcile.Key{}
		require.NoError(t, s.flush(ctx))
		require.NoError(t, st.tree.Iterate(ctx, reconcile.Key{}, reconcile.End, func(k reconcile.Key) error {
			stored = append(stored, k)
			return nil
		}))
		require.Equal(t, append([]reconcile.Key{extra.Key()}, keys[from:]...), stored)
	})
}

// recordImportSeeds are FuzzImportRecord's seeds: the states of the
// fuzzed file at its batch boundaries, one of another file, and damaged
// ones.
func recordImportSeeds(t testing.TB) map[string][]any {
	file, _ := recordFuzzSnapshot(t, recordFuzzScope, 120)
	states, _ := recordFuzzStates(t, file)
	other, _ := recordFuzzSnapshot(t, recordFuzzScope, 119)
	otherStates, _ := recordFuzzStates(t, other)
	enc := func(st snapshot.State) []byte {
		b, err := st.MarshalBinary()
		require.NoError(t, err)
		return b
	}
	mid := enc(states[len(states)/2])
	// A state of this file that decodes and fits the header, but that no
	// reader returned: a flipped bit in the aggregate, the chain digest or
	// the offset.
	// Byte positions in the encoding (snapshot.State.AppendBinary).
	const offsetAt, sumAt, chainAt = 1 + 32, 1 + 32 + 8 + 8 + 8, 1 + 32 + 8 + 8 + 8 + 32 + 40
	forged := func(at int) []byte {
		b := bytes.Clone(mid)
		b[at] ^= 0x01
		return b
	}
	seeds := map[string][]any{
		"forged-sum":    {forged(sumAt)},
		"forged-chain":  {forged(chainAt)},
		"forged-offset": {forged(offsetAt + 7)},
		"other-file":    {enc(otherStates[1])},
		"version":       {append([]byte{mid[0] + 1}, mid[1:]...)},
		"truncated":     {mid[:len(mid)-1]},
		"empty":         {[]byte{}},
	}
	for _, i := range []int{0, 1, len(states) / 2, len(states) - 2, len(states) - 1} {
		seeds[fmt.Sprintf("batch%d", i)] = []any{enc(states[i])}
	}
	return seeds
}

// TestRecordFuzzCorpus writes the record fuzz targets' seed corpus under
// testdata/fuzz when run with -update-record-corpus, and otherwise checks
// that every seed is there.
func TestRecordFuzzCorpus(t *testing.T) {
	for name, seeds := range map[string]map[string][]any{
		"FuzzDecodeCursor": recordCursorSeeds(t),
		"FuzzBulkRecord":   bulkRecordSeeds(t),
		"FuzzImportRecord": recordImportSeeds(t),
	} {
		dir := filepath.Join("testdata", "fuzz", name)
		for file, vals := range seeds {
			entry := []byte("go test fuzz v1\n")
			for _, v := range vals {
				entry = fmt.Appendf(entry, "[]byte(%q)\n", v.([]byte))
			}
			path := filepath.Join(dir, file)
			if *updateRecordCorpus {
				require.NoError(t, os.MkdirAll(dir, 0o755))
				require.NoError(t, os.WriteFile(path, entry, 0o644))
				continue
			}
			_, err := os.Stat(path)
			require.NoError(t, err, "run go test ./node -run TestRecordFuzzCorpus -update-record-corpus")
		}
	}
}
