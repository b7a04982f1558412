package node_test

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

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
	has, err := d.Has(t.Context(), ds.NewKey("/storesync/resume/bulk").ChildString(hex.EncodeToString(id[:])))
	require.NoError(t, err)
	return has
}

// TestBulkImportStoresWhatTwoPassesStore: an import into a store that
// does not keep the scope, or keeps it empty (one pass, the tree built
// from the keys in order) leaves exactly the records, byte for byte, of
// an import into a store whose scope holds a message already (two
// passes, the keys inserted through Put), with and without the hash
// index, and each store proves itself on reopen.
func TestBulkImportStoresWhatTwoPassesStore(t *testing.T) {
	msgs := snapMsgs(21, scopeA, 6000)
	src, _ := filledStore(t, scopeA, msgs)
	path, h := exportTo(t, src, scopeA, t.TempDir(), "a.snap", smallBatches...)
	for _, index := range []bool{false, true} {
		t.Run(fmt.Sprintf("hash index %v", index), func(t *testing.T) {
			var dumps []map[string]string
			for _, into := range []string{"not kept", "kept empty", "holding a message"} {
				d := dssync.MutexWrap(ds.NewMapDatastore())
				s := openWith(t, d, nil, node.WithHashIndex(index))
				switch into {
				case "kept empty":
					require.NoError(t, s.AddScope(t.Context(), scopeA))
				case "holding a message":
					// One of the file's: the end is the same store.
					require.NoError(t, s.AddScope(t.Context(), scopeA))
					_, err := s.Put(t.Context(), msgs[17])
					require.NoError(t, err)
				}
				rep, err := s.ImportFile(t.Context(), path)
				require.NoError(t, err, into)
				twoPasses := into == "holding a message"
				require.Equal(t, twoPasses, rep.Verify > 0, "%s: two passes only into a scope with messages", into)
				require.Equal(t, int(h.Count), rep.Added+rep.Duplicates, into)
				require.Equal(t, h.Root(), rep.After.Root, into)
				requireScope(t, s, scopeA, msgs)
				require.NoError(t, s.Close())
				dumps = append(dumps, dump(t, d))
				reopened := openWith(t, d, nil, node.WithHashIndex(index), node.WithVerifyOnOpen(true))
				requireScope(t, reopened, scopeA, msgs)
			}
			require.Equal(t, dumps[2], dumps[0], "not kept")
			require.Equal(t, dumps[2], dumps[1], "kept empty")
		})
	}
}

// TestBulkImportHoldsLiveCommits: while a one-pass import builds the
// tree of a kept, empty scope, commits to the scope go on without
// waiting, their keys held out of the tree (a read of the tree flushes,
// and finds it empty), and the import's end puts them in: a message the
// file holds too once, one it does not beside the file's. A bad file
// undoes the import's records and keeps the live ones.
func TestBulkImportHoldsLiveCommits(t *testing.T) {
	msgs := snapMsgs(25, scopeA, 3000)
	path, h, bad := goodAndBadSnapshot(t, msgs)
	live := []reconcile.Message{msgs[len(msgs)-1], msg(scopeA, 5, 1), msg(scopeA, 6, 2)}

	for _, file := range []string{path, bad} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			dst, d := newMemStore(t, []reconcile.Scope{scopeA}, node.WithFlush(1, time.Hour))
			done, let := startHeldImport(t, dst, file, func(p protocol.Progress) bool {
				return p.Kind == protocol.ProgressImport && p.Done > 0 && p.Done < int(h.Count)
			})
			res, err := dst.Put(t.Context(), live...)
			require.NoError(t, err)
			require.Len(t, res.Added, len(live), "the file's messages are not in the scope yet")
			tree, ok := dst.Tree(scopeA) // flushes: the held keys stay out
			require.True(t, ok)
			require.Zero(t, tree.Count())
			st, _ := dst.Stats(scopeA)
			require.EqualValues(t, len(live), st.Count)
			let()
			err = <-done

			want := append(slices.Clone(live[1:]), msgs...)
			if file == bad {
				require.ErrorIs(t, err, snapshot.ErrCorrupt)
				want = live
			} else {
				require.NoError(t, err)
			}
			requireScope(t, dst, scopeA, want)
			st, _ = dst.Stats(scopeA)
			require.EqualValues(t, len(want), st.Count)
			require.False(t, bulkRecord(t, d, scopeA))
			// Flushes work for the scope again.
			more := msg(scopeA, 7, 3)
			_, err = dst.Put(t.Context(), more)
			require.NoError(t, err)
			tree, _ = dst.Tree(scopeA)
			require.EqualValues(t, len(want)+1, tree.Count())
			require.NoError(t, dst.Close())
			reopened := openWith(t, d, nil, node.WithVerifyOnOpen(true))
			requireScope(t, reopened, scopeA, append(want, more))
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
	path, _, bad := goodAndBadSnapshot(t, msgs)

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

// TestBulkImportSurvivesAFailedWriteOfItsNodes: an import that writes its
// tree nodes in mid-load (here after every few batches) and finds one of
// those writes failing, or one of its records' commits, must not end
// with a tree missing the nodes of the failed write: whichever commit
// fails, the store reopens verified and the import then completes.
func TestBulkImportSurvivesAFailedWriteOfItsNodes(t *testing.T) {
	node.SetBulkNodeBytes(t, 512)
	msgs := snapMsgs(26, scopeA, 3000)
	src, _ := filledStore(t, scopeA, msgs)
	path, _ := exportTo(t, src, scopeA, t.TempDir(), "a.snap", smallBatches...)
	for failAt := int32(2); failAt <= 12; failAt++ {
		f := &failingDS{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
		dst := openWith(t, f, nil)
		f.commits.Store(0)
		f.failAt.Store(failAt)
		_, err := dst.ImportFile(t.Context(), path)
		require.ErrorIs(t, err, errDisk, "commit %d failed", failAt)
		require.NoError(t, dst.Close())

		again := openWith(t, f.Batching, nil, node.WithVerifyOnOpen(true))
		_, err = again.ImportFile(t.Context(), path)
		require.NoError(t, err, "commit %d failed", failAt)
		requireScope(t, again, scopeA, msgs)
		require.NoError(t, again.Close())
		openWith(t, f.Batching, nil, node.WithVerifyOnOpen(true))
	}
}
