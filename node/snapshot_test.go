package node_test

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ds "github.com/ipfs/go-datastore"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

func TestExportImportIntoEmptyStore(t *testing.T) {
	msgs := snapMsgs(1, scopeA, 3000)
	src, _ := filledStore(t, scopeA, msgs)
	path, h := exportTo(t, src, scopeA, t.TempDir(), "a.snap", smallBatches...)
	want, _ := src.Stats(scopeA)
	require.Equal(t, want.Count, h.Count)
	require.Equal(t, want.Root, h.Root())
	require.Equal(t, scopeA, h.Scope)

	dst, _ := newMemStore(t, nil)
	rep, err := dst.ImportFile(t.Context(), path)
	require.NoError(t, err)
	require.Equal(t, h, rep.Header)
	require.Equal(t, int(h.Count), rep.Added)
	require.Zero(t, rep.Duplicates)
	require.Zero(t, rep.Rejected)
	require.False(t, rep.Resumed)
	require.Greater(t, rep.Batches, 50, "small batches")
	require.Equal(t, h.Root(), rep.After.Root)
	require.Equal(t, []reconcile.Scope{scopeA}, dst.Scopes(), "the file's scope is kept")
	requireScope(t, dst, scopeA, msgs)

	// The messages themselves, not only their keys, came over.
	page, err := dst.Query(t.Context(), node.Query{Scope: scopeA, Limit: node.MaxQueryLimit})
	require.NoError(t, err)
	want2, err := src.Query(t.Context(), node.Query{Scope: scopeA, Limit: node.MaxQueryLimit})
	require.NoError(t, err)
	require.Equal(t, want2.Messages, page.Messages)
}

// TestExportImportOverLevelDB runs both ends over LevelDB, whose export
// reads one sequential range.
func TestExportImportOverLevelDB(t *testing.T) {
	msgs := snapMsgs(2, scopeA, 2000)
	d := openLevel(t, t.TempDir())
	t.Cleanup(func() { d.Close() }) // after the store's Close
	src := openWith(t, d, []reconcile.Scope{scopeA}, node.WithVerifyOnOpen(true))
	_, err := src.Put(t.Context(), msgs...)
	require.NoError(t, err)
	path, h := exportTo(t, src, scopeA, t.TempDir(), "a.snap")

	d2 := openLevel(t, t.TempDir())
	t.Cleanup(func() { d2.Close() })
	dst := openWith(t, d2, nil)
	rep, err := dst.ImportFile(t.Context(), path)
	require.NoError(t, err)
	require.Equal(t, int(h.Count), rep.Added)
	requireScope(t, dst, scopeA, msgs)
}

func TestImportAddsOnlyWhatIsMissing(t *testing.T) {
	msgs := snapMsgs(3, scopeA, 2000)
	src, _ := filledStore(t, scopeA, msgs)
	path, h := exportTo(t, src, scopeA, t.TempDir(), "a.snap", smallBatches...)

	// The store holds every third message of the file and 100 of its own.
	var held []reconcile.Message
	for i := 0; i < len(msgs); i += 3 {
		held = append(held, msgs[i])
	}
	own := snapMsgs(4, scopeA, 100)
	dst, _ := filledStore(t, scopeA, append(slices.Clone(held), own...))
	rep, err := dst.ImportFile(t.Context(), path)
	require.NoError(t, err)
	require.Equal(t, len(msgs)-len(held), rep.Added)
	require.Equal(t, len(held), rep.Duplicates)
	require.Equal(t, int(h.Count), rep.Added+rep.Duplicates)
	requireScope(t, dst, scopeA, append(slices.Clone(msgs), own...))
}

func TestImportTwiceAddsNothing(t *testing.T) {
	msgs := snapMsgs(5, scopeA, 1500)
	src, _ := filledStore(t, scopeA, msgs)
	path, h := exportTo(t, src, scopeA, t.TempDir(), "a.snap", smallBatches...)
	dst, d := newMemStore(t, nil)
	_, err := dst.ImportFile(t.Context(), path)
	require.NoError(t, err)
	before := dump(t, d)

	rep, err := dst.ImportFile(t.Context(), path)
	require.NoError(t, err)
	require.Zero(t, rep.Added)
	require.Equal(t, int(h.Count), rep.Duplicates)
	require.False(t, rep.Resumed)
	require.Equal(t, before, dump(t, d), "nothing changed, no import record left")
}

// TestBadFilesStoreNothing: every damaged file fails with the reader's
// error and leaves the store byte for byte as it was, whether it keeps
// the file's scope or not, even when the damage is found only at the
// file's end.
func TestBadFilesStoreNothing(t *testing.T) {
	msgs := snapMsgs(6, scopeA, 2000)
	src, _ := filledStore(t, scopeA, msgs)
	dir := t.TempDir()
	path, h := exportTo(t, src, scopeA, dir, "a.snap", smallBatches...)
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, h.Size, int64(len(good)))

	// The header's fields after the topics (package snapshot's doc).
	tail := 16 + len(scopeA.PubsubTopic) + len(scopeA.ContentTopic)
	forge := func(edit func(hdr []byte)) []byte {
		b := slices.Clone(good)
		edit(b)
		crc := crc32.Checksum(b[:tail+140], crc32.MakeTable(crc32.Castagnoli))
		binary.BigEndian.PutUint32(b[tail+140:], crc)
		return b
	}
	flip := func(off int) []byte {
		b := slices.Clone(good)
		b[off] ^= 0x10
		return b
	}
	cases := []struct {
		name string
		file []byte
		is   error
	}{
		{"truncated in the header", good[:40], snapshot.ErrTruncated},
		{"truncated in a batch", good[:len(good)/2], snapshot.ErrTruncated},
		{"truncated before the trailer", good[:len(good)-49], snapshot.ErrTruncated},
		{"flipped byte in the header", flip(tail + 25), snapshot.ErrCorrupt},
		{"flipped byte in the first batch", flip(tail + 144 + 60), snapshot.ErrCorrupt},
		{"flipped byte in the last batch", flip(len(good) - 60), snapshot.ErrCorrupt},
		{"flipped byte in the trailer", flip(len(good) - 20), snapshot.ErrCorrupt},
		// A consistent header whose root is another: every batch checks
		// out, the trailer does not add up.
		{"forged root", forge(func(b []byte) { b[tail+28] ^= 1 }), snapshot.ErrMismatch},
		{"forged count", forge(func(b []byte) { binary.BigEndian.PutUint64(b[tail+20:], h.Count+1) }), snapshot.ErrMismatch},
		{"forged last key", forge(func(b []byte) { b[tail+100+7]++ }), snapshot.ErrMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeVariant(t, dir, "bad.snap", tc.file)
			empty, d0 := newMemStore(t, nil)
			partial, d1 := filledStore(t, scopeA, msgs[:500])
			for _, target := range []struct {
				s *node.Store
				d ds.Datastore
			}{{empty, d0}, {partial, d1}} {
				before := dump(t, target.d)
				_, err := target.s.ImportFile(t.Context(), p)
				require.ErrorIs(t, err, tc.is)
				require.ErrorContains(t, err, "bad.snap")
				require.Equal(t, before, dump(t, target.d), "the store is unchanged")
			}
			require.Empty(t, empty.Scopes(), "not even the scope is kept")
		})
	}
}

func TestExportEmptyScope(t *testing.T) {
	src, _ := newMemStore(t, []reconcile.Scope{scopeA})
	path, h := exportTo(t, src, scopeA, t.TempDir(), "empty.snap")
	require.Zero(t, h.Count)
	dst, _ := newMemStore(t, nil)
	rep, err := dst.ImportFile(t.Context(), path)
	require.NoError(t, err)
	require.Zero(t, rep.Added+rep.Duplicates+rep.Rejected+rep.Batches)
	require.Equal(t, []reconcile.Scope{scopeA}, dst.Scopes())
	requireScope(t, dst, scopeA, nil)
}

func TestExportUnknownScope(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA})
	dir := t.TempDir()
	_, err := s.ExportFile(t.Context(), scopeX, filepath.Join(dir, "x.snap"))
	require.ErrorIs(t, err, node.ErrUnknownScope)
	f, err := os.CreateTemp(dir, "w")
	require.NoError(t, err)
	defer f.Close()
	_, err = s.Export(t.Context(), scopeX, f)
	require.ErrorIs(t, err, node.ErrUnknownScope)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the file the test made")
}

// TestExportFileIsAtomic: a failed export leaves the old file and no
// temporary one; a good one replaces the old file.
func TestExportFileIsAtomic(t *testing.T) {
	s, _ := filledStore(t, scopeA, snapMsgs(7, scopeA, 300))
	dir := t.TempDir()
	path := writeVariant(t, dir, "a.snap", []byte("old"))
	// The batch limit is below the default message limit: the writer
	// refuses to start.
	_, err := s.ExportFile(t.Context(), scopeA, path, snapshot.WithMaxBatchSize(4<<10))
	require.Error(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "old", string(got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)

	h, err := s.ExportFile(t.Context(), scopeA, path)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, h.Size, fi.Size())
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

// TestImportProgress: verification events, then import events, each
// with a growing Done and the header's count as Total; and export
// events up to the count.
func TestImportProgress(t *testing.T) {
	msgs := snapMsgs(8, scopeA, 2000)
	src, _ := filledStore(t, scopeA, msgs)
	var exported []protocol.Progress
	ctx := protocol.WithProgress(t.Context(), func(p protocol.Progress) { exported = append(exported, p) })
	path := filepath.Join(t.TempDir(), "a.snap")
	h, err := src.ExportFile(ctx, scopeA, path, smallBatches...)
	require.NoError(t, err)
	require.Greater(t, len(exported), 10)
	for i, p := range exported {
		require.Equal(t, node.ProgressExport, p.Kind)
		require.Equal(t, scopeA, p.Scope)
		require.Equal(t, len(msgs), p.Total)
		if i > 0 {
			require.Greater(t, p.Done, exported[i-1].Done)
			require.Greater(t, p.Bytes, exported[i-1].Bytes)
		}
	}
	require.Equal(t, len(msgs), exported[len(exported)-1].Done)
	require.Equal(t, h.Size, exported[len(exported)-1].Bytes)

	// Into a scope that holds a message, a verification pass first; into
	// a store without it, the bulk import's one pass.
	for _, kept := range []bool{true, false} {
		var events []protocol.Progress
		ctx = protocol.WithProgress(t.Context(), func(p protocol.Progress) { events = append(events, p) })
		dst, _ := newMemStore(t, nil)
		if kept {
			keepOutsider(t, dst)
		}
		rep, err := dst.ImportFile(ctx, path)
		require.NoError(t, err)
		var verify, stored []protocol.Progress
		for _, p := range events {
			require.Equal(t, scopeA, p.Scope)
			require.Equal(t, len(msgs), p.Total)
			switch p.Kind {
			case node.ProgressVerify:
				require.Empty(t, stored, "verification comes first")
				verify = append(verify, p)
			case protocol.ProgressImport:
				stored = append(stored, p)
			default:
				t.Fatalf("kind %q", p.Kind)
			}
		}
		passes := [][]protocol.Progress{stored}
		if kept {
			require.Len(t, verify, rep.Batches)
			passes = append(passes, verify)
		} else {
			require.Empty(t, verify)
			require.Zero(t, rep.Verify)
		}
		require.Len(t, stored, rep.Batches+1, "one as storing starts, one a batch")
		for _, evs := range passes {
			for i := 1; i < len(evs); i++ {
				require.Greater(t, evs[i].Done, evs[i-1].Done)
				require.Greater(t, evs[i].Bytes, evs[i-1].Bytes)
			}
			last := evs[len(evs)-1]
			require.Equal(t, len(msgs), last.Done)
			require.Equal(t, h.Size-49, last.Bytes, "the trailer's offset")
		}
		require.Zero(t, stored[0].Done)
	}
}
