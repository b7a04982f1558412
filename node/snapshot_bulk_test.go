package node_test

import (
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// bulkRecord reports whether the store holds a bulk record of sc.
func bulkRecord(t *testing.T, d ds.Datastore, sc reconcile.Scope) bool {
	t.Helper()
	id := sc.ID()
	has, err := d.Has(t.Context(), ds.NewKey("/storesync/bulk").ChildString(hex.EncodeToString(id[:])))
	require.NoError(t, err)
	return has
}

// TestBulkImportStoresWhatTwoPassesStore: an import into a store that
// does not keep the scope (one pass, the tree built from the keys in
// order) leaves exactly the records, byte for byte, of an import into a
// store that keeps it (two passes, the keys inserted through Put), with
// and without the hash index, and the store proves itself on reopen.
func TestBulkImportStoresWhatTwoPassesStore(t *testing.T) {
	msgs := snapMsgs(21, scopeA, 6000)
	src, _ := filledStore(t, scopeA, msgs)
	path, h := exportTo(t, src, scopeA, t.TempDir(), "a.snap", smallBatches...)
	for _, index := range []bool{false, true} {
		t.Run(fmt.Sprintf("hash index %v", index), func(t *testing.T) {
			dumps := make([]map[string]string, 2)
			for i, kept := range []bool{false, true} {
				d := dssync.MutexWrap(ds.NewMapDatastore())
				var scopes []reconcile.Scope
				if kept {
					scopes = []reconcile.Scope{scopeA}
				}
				s := openWith(t, d, scopes, node.WithHashIndex(index))
				rep, err := s.ImportFile(t.Context(), path)
				require.NoError(t, err)
				require.Equal(t, int(h.Count), rep.Added)
				require.Equal(t, kept, rep.Verify > 0, "two passes only into a kept scope")
				require.Equal(t, h.Root(), rep.After.Root)
				requireScope(t, s, scopeA, msgs)
				require.NoError(t, s.Close())
				dumps[i] = dump(t, d)
				reopened := openWith(t, d, nil, node.WithHashIndex(index), node.WithVerifyOnOpen(true))
				requireScope(t, reopened, scopeA, msgs)
			}
			require.Equal(t, dumps[1], dumps[0])
		})
	}
}

// TestBulkImportKeepsWhatItStoredWhenTheDatastoreFails: a commit that
// fails midway ends the bulk import with the error, keeping the batches
// stored before it as a kept scope with the import record, and the
// next import resumes; when the datastore fails the ending too, the bulk
// record stays, and the next open keeps what was stored.
func TestBulkImportKeepsWhatItStoredWhenTheDatastoreFails(t *testing.T) {
	msgs := snapMsgs(22, scopeA, 3000)
	src, _ := filledStore(t, scopeA, msgs)
	path, h := exportTo(t, src, scopeA, t.TempDir(), "a.snap", smallBatches...)

	t.Run("the ending works", func(t *testing.T) {
		f := &failingDS{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
		dst := openWith(t, f, nil)
		f.commits.Store(0)
		f.failAt.Store(10)
		rep, err := dst.ImportFile(t.Context(), path)
		require.ErrorIs(t, err, errDisk)
		require.Equal(t, 1, int(f.failed.Load()))
		part, ok := dst.Stats(scopeA)
		require.True(t, ok, "the scope is kept with what was stored")
		require.Equal(t, uint64(rep.Added), part.Count)
		require.Positive(t, part.Count)
		require.NotNil(t, importRecord(t, f, scopeA))
		require.False(t, bulkRecord(t, f, scopeA))

		rep, err = dst.ImportFile(t.Context(), path)
		require.NoError(t, err)
		require.True(t, rep.Resumed)
		require.Equal(t, int(part.Count), rep.ResumedMessages)
		require.Equal(t, int(h.Count-part.Count), rep.Added)
		requireScope(t, dst, scopeA, msgs)
		require.Nil(t, importRecord(t, f, scopeA))
	})
	t.Run("the ending fails too", func(t *testing.T) {
		f := &failingDS{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
		dst := openWith(t, f, nil)
		f.commits.Store(0)
		f.failFrom.Store(10)
		_, err := dst.ImportFile(t.Context(), path)
		require.ErrorIs(t, err, errDisk)
		_, ok := dst.Stats(scopeA)
		require.False(t, ok)
		require.True(t, bulkRecord(t, f, scopeA), "left for the next open")

		// As after a crash: the next open keeps what was stored.
		f.failFrom.Store(0)
		again := openWith(t, f.Batching, nil, node.WithVerifyOnOpen(true))
		part, ok := again.Stats(scopeA)
		require.True(t, ok)
		require.Positive(t, part.Count)
		require.Less(t, part.Count, h.Count)
		require.False(t, bulkRecord(t, f, scopeA))
		rep, err := again.ImportFile(t.Context(), path)
		require.NoError(t, err)
		require.Equal(t, int(part.Count), rep.Duplicates, "no import record: the stored ones are found")
		requireScope(t, again, scopeA, msgs)
	})
}

// TestBulkImportOfABadFileLeavesNoTrace: a file whose damage is in its
// last batch is stored batch by batch and then undone entirely, hash
// index entries and tree nodes included; the scope is not kept, and a
// later import of the good file finds nothing of the bad one.
func TestBulkImportOfABadFileLeavesNoTrace(t *testing.T) {
	msgs := snapMsgs(23, scopeA, 3000)
	src, _ := filledStore(t, scopeA, msgs)
	dir := t.TempDir()
	path, _ := exportTo(t, src, scopeA, dir, "a.snap", smallBatches...)
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	damaged := slices.Clone(good)
	damaged[len(damaged)-60] ^= 0x10 // in the last batch
	bad := writeVariant(t, dir, "bad.snap", damaged)

	dst, d := newMemStore(t, []reconcile.Scope{scopeB}, node.WithHashIndex(true))
	before := dump(t, d)
	stored := 0
	ctx := protocol.WithProgress(t.Context(), func(p protocol.Progress) {
		if p.Kind == protocol.ProgressImport {
			stored = p.Done
		}
	})
	rep, err := dst.ImportFile(ctx, bad)
	require.ErrorIs(t, err, snapshot.ErrCorrupt)
	require.Positive(t, stored, "batches were stored before the end showed the damage")
	require.Equal(t, before, dump(t, d), "and undone")
	_, ok := dst.Stats(scopeA)
	require.False(t, ok)
	require.Zero(t, rep.After.Count)
	require.Zero(t, rep.Added, "nothing the import stored is left")

	rep, err = dst.ImportFile(t.Context(), path)
	require.NoError(t, err)
	require.Equal(t, len(msgs), rep.Added)
	requireScope(t, dst, scopeA, msgs)
}

// TestBulkImportRefusesStrayRecords: message records of a scope the
// store does not keep, with no bulk record to explain them, are not the
// store's: a bulk import refuses to build a tree that would miss them.
func TestBulkImportRefusesStrayRecords(t *testing.T) {
	msgs := snapMsgs(24, scopeA, 100)
	src, _ := filledStore(t, scopeA, msgs)
	path, _ := exportTo(t, src, scopeA, t.TempDir(), "a.snap", smallBatches...)
	dst, d := newMemStore(t, nil)
	stray := node.RecordKeyOf(scopeA)(msgs[0].Key())
	require.NoError(t, d.Put(t.Context(), stray, []byte("x")))
	_, err := dst.ImportFile(t.Context(), path)
	require.ErrorIs(t, err, node.ErrCorrupt)
	require.ErrorContains(t, err, "message records but no record")
	_, ok := dst.Stats(scopeA)
	require.False(t, ok)
	require.False(t, bulkRecord(t, d, scopeA))
}
