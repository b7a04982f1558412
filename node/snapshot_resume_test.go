package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// cancelAfter returns a context that is cancelled once an import has
// reported storing n batches.
func cancelAfter(t *testing.T, n int) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	stored := 0
	return protocol.WithProgress(ctx, func(p protocol.Progress) {
		if p.Kind == protocol.ProgressImport {
			if stored++; stored > n { // the first event is the start
				cancel()
			}
		}
	})
}

func TestImportResumesWhereItStopped(t *testing.T) {
	msgs := snapMsgs(10, scopeA, 2000)
	src, _ := filledStore(t, scopeA, msgs)
	dir := t.TempDir()
	path, h := exportTo(t, src, scopeA, dir, "a.snap", smallBatches...)
	dst, d := newMemStore(t, nil)

	rep, err := dst.ImportFile(cancelAfter(t, 7), path)
	require.ErrorIs(t, err, context.Canceled)
	part, _ := dst.Stats(scopeA)
	require.Equal(t, uint64(rep.Added), part.Count)
	rec := importRecord(t, d, scopeA)
	require.NotNil(t, rec, "the state after the last stored batch")
	var st snapshot.State
	require.NoError(t, st.UnmarshalBinary(rec))
	require.Equal(t, 7, st.Batches())
	require.Equal(t, part.Count, st.Count())

	// A damaged copy of the file fails and leaves the record alone.
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	bad := slices.Clone(good)
	bad[len(bad)-100] ^= 1
	before := dump(t, d)
	_, err = dst.ImportFile(t.Context(), writeVariant(t, dir, "bad.snap", bad))
	require.ErrorIs(t, err, snapshot.ErrCorrupt)
	require.Equal(t, before, dump(t, d))

	rep, err = dst.ImportFile(t.Context(), path)
	require.NoError(t, err)
	require.True(t, rep.Resumed)
	require.Equal(t, 7, rep.ResumedBatches)
	require.Equal(t, int(part.Count), rep.ResumedMessages)
	require.Equal(t, len(msgs)-int(part.Count), rep.Added)
	require.Zero(t, rep.Duplicates)
	require.Equal(t, h.Size-49-st.Offset(), rep.Bytes, "the batches after the record")
	require.Nil(t, importRecord(t, d, scopeA), "deleted at the end")
	requireScope(t, dst, scopeA, msgs)
}

// failingDS fails the failAt-th batch commit, counting from when it is
// armed, while every is set to n > 0 every n-th commit, and while
// failFrom is set to n > 0 the n-th and every later one. A failed commit
// applies nothing.
type failingDS struct {
	ds.Batching
	commits  atomic.Int32
	failAt   atomic.Int32
	every    atomic.Int32
	failFrom atomic.Int32
	failed   atomic.Int32
}

var errDisk = errors.New("disk on fire")

func (f *failingDS) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := f.Batching.Batch(ctx)
	return &failingBatch{Batch: b, f: f}, err
}

type failingBatch struct {
	ds.Batch
	f *failingDS
}

func (b *failingBatch) Commit(ctx context.Context) error {
	n := b.f.commits.Add(1)
	from := b.f.failFrom.Load()
	if e := b.f.every.Load(); n == b.f.failAt.Load() || (e > 0 && n%e == 0) || (from > 0 && n >= from) {
		b.f.failed.Add(1)
		return errDisk
	}
	return b.Batch.Commit(ctx)
}

// TestImportResumesAfterAPartBatch: into a kept scope, a batch of more
// than 4,096 messages commits in parts and only the last carries the record, so a failure
// after a batch's first part resumes at that batch, whose first part is
// then duplicates.
func TestImportResumesAfterAPartBatch(t *testing.T) {
	msgs := make([]reconcile.Message, 20_000)
	for i := range msgs {
		msgs[i] = msg(scopeA, int64(1+i/3), uint64(i))
	}
	// About 9,000 of these small messages fill a batch: three commits.
	path, h := writeSnapshot(t, scopeA, msgs, snapshot.WithMaxMessageSize(1<<10), snapshot.WithMaxBatchSize(100<<10))
	sizes := batchSizes(t, path)
	require.Len(t, sizes, 3)
	require.Greater(t, sizes[0], 2*4096)
	require.Greater(t, sizes[1], 4096)

	f := &failingDS{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
	// A scope with a message, so that Put stores the batches; flushes
	// would be commits too.
	dst := openWith(t, f, nil, neverFlush)
	keepOutsider(t, dst)
	f.commits.Store(0)
	// Batch 0 takes commits 1 to 3, batch 1 commits 4 to 6.
	f.failAt.Store(5)
	rep, err := dst.ImportFile(t.Context(), path)
	require.ErrorIs(t, err, errDisk)
	require.Equal(t, sizes[0]+4096, rep.Added)

	f.failAt.Store(0)
	rep, err = dst.ImportFile(t.Context(), path)
	require.NoError(t, err)
	require.True(t, rep.Resumed)
	require.Equal(t, 1, rep.ResumedBatches)
	require.Equal(t, sizes[0], rep.ResumedMessages)
	require.Equal(t, 4096, rep.Duplicates, "the part of batch 1 stored before the failure")
	require.Equal(t, int(h.Count)-sizes[0]-4096, rep.Added)
	requireScope(t, dst, scopeA, append(msgs, outsider))
	require.Nil(t, importRecord(t, f, scopeA))
}

// batchSizes returns the message count of each batch of a snapshot file.
func batchSizes(t *testing.T, path string) []int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r, err := snapshot.NewReader(f)
	require.NoError(t, err)
	defer r.Close()
	var out []int
	for {
		b, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, len(b.Messages))
	}
}

// writeSnapshot writes msgs, sorted, to a snapshot file with a
// snapshot.Writer, without a store.
func writeSnapshot(t *testing.T, sc reconcile.Scope, msgs []reconcile.Message, opts ...snapshot.Option) (string, snapshot.Header) {
	t.Helper()
	sorted := slices.Clone(msgs)
	slices.SortFunc(sorted, func(a, b reconcile.Message) int { return a.Key().Compare(b.Key()) })
	f, err := os.Create(filepath.Join(t.TempDir(), "w.snap"))
	require.NoError(t, err)
	defer f.Close()
	w, err := snapshot.NewWriter(f, sc, opts...)
	require.NoError(t, err)
	for _, m := range sorted {
		require.NoError(t, w.Add(m))
	}
	h, err := w.Close()
	require.NoError(t, err)
	return f.Name(), h
}

// TestImportReplacesTheRecordOfAnotherFile: an unfinished import of one
// file does not make an import of another skip anything.
func TestImportReplacesTheRecordOfAnotherFile(t *testing.T) {
	x, y := snapMsgs(11, scopeA, 1000), snapMsgs(12, scopeA, 1000)
	dir := t.TempDir()
	sx, _ := filledStore(t, scopeA, x)
	sy, _ := filledStore(t, scopeA, y)
	px, _ := exportTo(t, sx, scopeA, dir, "x.snap", smallBatches...)
	py, _ := exportTo(t, sy, scopeA, dir, "y.snap", smallBatches...)
	dst, d := newMemStore(t, nil)

	_, err := dst.ImportFile(cancelAfter(t, 5), px)
	require.ErrorIs(t, err, context.Canceled)
	partX, _ := dst.Stats(scopeA)
	require.NotNil(t, importRecord(t, d, scopeA))

	rep, err := dst.ImportFile(t.Context(), py)
	require.NoError(t, err)
	require.False(t, rep.Resumed)
	require.Equal(t, len(y), rep.Added)
	require.Nil(t, importRecord(t, d, scopeA))

	rep, err = dst.ImportFile(t.Context(), px)
	require.NoError(t, err)
	require.False(t, rep.Resumed, "the record went with y's import")
	require.Equal(t, int(partX.Count), rep.Duplicates)
	requireScope(t, dst, scopeA, append(slices.Clone(x), y...))
}

func TestConcurrentImportOfAScopeIsRefused(t *testing.T) {
	msgs := snapMsgs(13, scopeA, 500)
	src, _ := filledStore(t, scopeA, msgs)
	path, h := exportTo(t, src, scopeA, t.TempDir(), "a.snap", smallBatches...)
	for _, kept := range []bool{false, true} {
		t.Run(fmt.Sprintf("scope kept %v", kept), func(t *testing.T) {
			dst, _ := newMemStore(t, nil)
			want := msgs
			if kept {
				keepOutsider(t, dst)
				want = append(slices.Clone(msgs), outsider)
			}
			// Held after the verification pass, or, into a store that
			// does not keep the scope, after the first batch stored.
			done, let := startHeldImport(t, dst, path, func(p protocol.Progress) bool {
				return (kept && p.Kind == node.ProgressVerify && p.Done == int(h.Count)) ||
					(!kept && p.Kind == protocol.ProgressImport && p.Done > 0 && p.Done < int(h.Count))
			})
			_, err := dst.ImportFile(t.Context(), path)
			require.ErrorIs(t, err, node.ErrImportRunning)
			if !kept {
				// The scope is the import's until it ends.
				require.ErrorIs(t, dst.AddScope(t.Context(), scopeA), node.ErrImportRunning)
				res, err := dst.Put(t.Context(), msgs[0])
				require.NoError(t, err)
				require.Len(t, res.Rejected, 1)
				require.ErrorIs(t, res.Rejected[0].Err, node.ErrUnknownScope)
				_, ok := dst.Stats(scopeA)
				require.False(t, ok, "not kept before the import ends")
			}
			let()
			require.NoError(t, <-done)
			requireScope(t, dst, scopeA, want)

			rep, err := dst.ImportFile(t.Context(), path)
			require.NoError(t, err, "the scope is free again")
			require.Equal(t, int(h.Count), rep.Duplicates)
		})
	}
}

// TestImportCountsWhatTheStoreRefuses: messages over the store's size
// limit are rejected one by one, and the counts still add up.
func TestImportCountsWhatTheStoreRefuses(t *testing.T) {
	msgs := snapMsgs(14, scopeA, 600)
	big := 0
	for i := range msgs {
		if i%10 == 0 {
			msgs[i].Payload = make([]byte, 2000+i)
			big++
		}
	}
	src, _ := filledStore(t, scopeA, msgs)
	path, h := exportTo(t, src, scopeA, t.TempDir(), "a.snap")
	dst, _ := newMemStore(t, nil, node.WithMaxMessageSize(1500))
	rep, err := dst.ImportFile(t.Context(), path)
	require.NoError(t, err)
	require.Equal(t, big, rep.Rejected)
	require.Equal(t, len(msgs)-big, rep.Added)
	require.ErrorIs(t, rep.RejectReason, node.ErrInvalidMessage)
	require.ErrorIs(t, rep.RejectReason, reconcile.ErrMessageTooLarge)
	require.Equal(t, int(h.Count), rep.Added+rep.Rejected)
	require.NotEqual(t, h.Root(), rep.After.Root)
}

func TestNodeExportImportCountsMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := startNode(t, t.TempDir(), node.WithMetrics(reg))
	defer a.Close()
	msgs := snapMsgs(15, chatScope, 400)
	_, err := a.Put(t.Context(), msgs...)
	require.NoError(t, err)
	path := t.TempDir() + "/chat.snap"
	h, err := a.Export(t.Context(), chatScope, path, smallBatches...)
	require.NoError(t, err)
	require.Equal(t, uint64(len(msgs)), h.Count)

	b := startNode(t, t.TempDir(), node.WithMetrics(prometheus.NewRegistry()))
	defer b.Close()
	rep, err := b.Import(t.Context(), path)
	require.NoError(t, err)
	require.Equal(t, len(msgs), rep.Added)
	// Into a itself: all duplicates.
	rep, err = a.Import(t.Context(), path)
	require.NoError(t, err)
	require.Equal(t, len(msgs), rep.Duplicates)

	sc := chatScope.String()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"storesync_snapshot_messages_total", map[string]string{"scope": sc, "op": "export", "result": "exported"}, float64(len(msgs))},
		{"storesync_snapshot_messages_total", map[string]string{"scope": sc, "op": "import", "result": "duplicate"}, float64(len(msgs))},
		{"storesync_snapshot_messages_total", map[string]string{"scope": sc, "op": "import", "result": "added"}, 0},
		{"storesync_snapshot_bytes_total", map[string]string{"scope": sc, "op": "export"}, float64(h.Size)},
		{"storesync_snapshot_bytes_total", map[string]string{"scope": sc, "op": "import"}, float64(rep.Bytes)},
	} {
		require.InDelta(t, c.want, counter(t, reg, c.name, c.labels), 0, "%s %v", c.name, c.labels)
	}
}

// counter returns the value of the counter with the given labels, 0 if
// it has none.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if maps.Equal(got, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// swappingReader serves one content until it is rewound to its start
// (the storing pass), and another after.
type swappingReader struct {
	*bytes.Reader
	next []byte
}

func (r *swappingReader) Seek(off int64, whence int) (int64, error) {
	if off == 0 && whence == io.SeekStart && r.next != nil {
		r.Reader, r.next = bytes.NewReader(r.next), nil
	}
	return r.Reader.Seek(off, whence)
}

// TestImportNoticesAFileChangedBetweenPasses: what the storing pass
// reads is verified again, so a file damaged after the verification
// stores the batches before the damage and fails, and a good copy then
// resumes.
func TestImportNoticesAFileChangedBetweenPasses(t *testing.T) {
	msgs := snapMsgs(16, scopeA, 1000)
	src, _ := filledStore(t, scopeA, msgs)
	path, h := exportTo(t, src, scopeA, t.TempDir(), "a.snap", smallBatches...)
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	damaged := slices.Clone(good)
	damaged[len(damaged)-100] ^= 1 // in the last batch
	dst, d := newMemStore(t, nil)
	keepOutsider(t, dst) // two passes

	_, err = dst.Import(t.Context(), &swappingReader{Reader: bytes.NewReader(good), next: damaged})
	require.ErrorIs(t, err, snapshot.ErrCorrupt)
	require.ErrorContains(t, err, "the file changed since it was verified")
	part, _ := dst.Stats(scopeA)
	require.Less(t, part.Count, h.Count)
	require.NotNil(t, importRecord(t, d, scopeA))

	rep, err := dst.Import(t.Context(), bytes.NewReader(good))
	require.NoError(t, err)
	require.True(t, rep.Resumed)
	require.Equal(t, int(part.Count)-1, rep.ResumedMessages, "all but outsider")
	requireScope(t, dst, scopeA, append(msgs, outsider))
}
