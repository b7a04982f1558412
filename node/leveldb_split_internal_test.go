package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/reconcile"
)

var splitScope = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/app/1/split/proto"}

// splitMsgs returns n messages of splitScope from ts on, a second apart.
func splitMsgs(n, from int) []reconcile.Message {
	base := time.Now().Add(-time.Hour).UnixNano()
	out := make([]reconcile.Message, n)
	for i := range out {
		out[i] = reconcile.Message{PubsubTopic: splitScope.PubsubTopic, ContentTopic: splitScope.ContentTopic,
			Payload: []byte{byte(from + i), byte((from + i) >> 8)}, Timestamp: base + int64(from+i)*int64(time.Second)}
	}
	return out
}

// openSplit opens the data folder at dir, which must be of two LevelDBs.
func openSplit(t *testing.T, dir string) *splitStore {
	t.Helper()
	d, err := OpenLevelDB(dir)
	require.NoError(t, err)
	s, ok := d.(*splitStore)
	require.True(t, ok, "a new folder holds two LevelDBs")
	return s
}

// keysOfLevel lists every key of one LevelDB.
func keysOfLevel(t *testing.T, l *levelStore) []string {
	t.Helper()
	var keys []string
	it := l.DB.NewIterator(nil, nil)
	defer it.Release()
	for it.Next() {
		keys = append(keys, string(it.Key()))
	}
	require.NoError(t, it.Error())
	return keys
}

// requireWhole reopens the folder at dir and checks that its scope holds
// exactly want: the count, every message readable, and a record for
// nothing else.
func requireWhole(t *testing.T, dir string, want []reconcile.Message) {
	t.Helper()
	d := openSplit(t, dir)
	defer d.Close()
	s, err := OpenStore(t.Context(), d, WithVerifyOnOpen(true))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	stats, ok := s.Stats(splitScope)
	require.True(t, ok)
	require.Equal(t, uint64(len(want)), stats.Count)
	var sum reconcile.Aggregate
	keys := make([]reconcile.Key, len(want))
	for i := range want {
		keys[i] = want[i].Key()
		sum = sum.AddHash(&keys[i].Hash)
	}
	got, err := s.Get(t.Context(), splitScope, keys)
	require.NoError(t, err)
	for i, m := range got {
		require.NotNil(t, m, "message %d", i)
	}
	require.Equal(t, sum.Fingerprint(), stats.Root)
	n := 0
	for _, k := range keysOfLevel(t, d.msgs) {
		if strings.HasPrefix(k, msgsKey.String()+"/") {
			n++
		}
	}
	require.Equal(t, len(want), n, "message records")
}

// TestSplitLayoutKeepsMessagesApart: a new data folder holds the message
// records in one LevelDB and nothing else there; the other records in the
// other; a query over the root lists both in order.
func TestSplitLayoutKeepsMessagesApart(t *testing.T) {
	dir := t.TempDir()
	d := openSplit(t, dir)
	s, err := OpenStore(t.Context(), d, WithHashIndex(true))
	require.NoError(t, err)
	require.NoError(t, s.AddScope(t.Context(), splitScope))
	msgs := splitMsgs(300, 0)
	_, err = s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	for _, k := range keysOfLevel(t, d.msgs) {
		require.True(t, isMsgRecord([]byte(k)), "%s in the messages' LevelDB", k)
	}
	meta := keysOfLevel(t, d.meta)
	require.NotEmpty(t, meta)
	for _, k := range meta {
		require.False(t, isMsgRecord([]byte(k)), "%s in the other LevelDB", k)
	}
	res, err := d.Query(t.Context(), dsq.Query{KeysOnly: true, Orders: []dsq.Order{dsq.OrderByKey{}}})
	require.NoError(t, err)
	all, err := res.Rest()
	require.NoError(t, err)
	require.Len(t, all, len(meta)+len(keysOfLevel(t, d.msgs)))
	for i := 1; i < len(all); i++ {
		require.Less(t, all[i-1].Key, all[i].Key)
	}
	res, err = d.Query(t.Context(), dsq.Query{Prefix: "/storesync", KeysOnly: true, Orders: []dsq.Order{dsq.OrderByKey{}}, Offset: 2, Limit: 5})
	require.NoError(t, err)
	page, err := res.Rest()
	require.NoError(t, err)
	require.Equal(t, all[2:7], page)
	require.NoError(t, d.Close())
	requireWhole(t, dir, msgs)

	for _, sub := range []string{splitMessagesDir, splitMetaDir} {
		_, err := os.Stat(filepath.Join(dir, sub, "CURRENT"))
		require.NoError(t, err)
	}
}

// TestOneLevelDBFolderOpensAsItIs: a folder written before the split
// layout, one LevelDB at its top, opens as one LevelDB and keeps its
// messages.
func TestOneLevelDBFolderOpensAsItIs(t *testing.T) {
	dir := t.TempDir()
	l, err := openLevel(dir, levelConfig{writeBuffer: 4 << 20}, 4<<20, 100)
	require.NoError(t, err)
	s, err := OpenStore(t.Context(), l)
	require.NoError(t, err)
	require.NoError(t, s.AddScope(t.Context(), splitScope))
	msgs := splitMsgs(50, 0)
	_, err = s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, l.Close())

	d, err := OpenLevelDB(dir)
	require.NoError(t, err)
	_, one := d.(*levelStore)
	require.True(t, one)
	s, err = OpenStore(t.Context(), d)
	require.NoError(t, err)
	stats, _ := s.Stats(splitScope)
	require.Equal(t, uint64(len(msgs)), stats.Count)
	require.NoError(t, s.Close())
	require.NoError(t, d.Close())
	for _, sub := range []string{splitMessagesDir, splitMetaDir} {
		_, err := os.Stat(filepath.Join(dir, sub))
		require.True(t, os.IsNotExist(err), "%s made in a folder of one LevelDB", sub)
	}
}

// dieAfterMeta makes the messages' LevelDB fail from now on, as a kill
// after a batch's first part would leave it, then drops the store without
// a flush and closes what is left.
func dieAfterMeta(t *testing.T, d *splitStore) (kill func(s *Store)) {
	t.Helper()
	require.NoError(t, d.msgs.DB.Close())
	return func(s *Store) {
		require.NoError(t, d.meta.Close())
		_ = s.Close() // its flush fails: the LevelDBs are gone
	}
}

// TestSplitCommitKilledBetweenParts: a commit whose journal record is
// written but not its messages leaves a store that opens with exactly
// the messages committed before, and the cursor the commit carried
// unwritten.
func TestSplitCommitKilledBetweenParts(t *testing.T) {
	dir := t.TempDir()
	d := openSplit(t, dir)
	s, err := OpenStore(t.Context(), d, WithFlush(1_000_000, time.Hour))
	require.NoError(t, err)
	require.NoError(t, s.AddScope(t.Context(), splitScope))
	first := splitMsgs(200, 0)
	_, err = s.Put(t.Context(), first...)
	require.NoError(t, err)
	kill := dieAfterMeta(t, d)
	progress := resumeKey.ChildString("test")
	more := splitMsgs(100, 200)
	_, err = s.put(t.Context(), more, keysOfMsgs(more), func(ctx context.Context, w ds.Write) error {
		return w.Put(ctx, progress, []byte("done"))
	})
	require.Error(t, err)
	kill(s)
	requireWhole(t, dir, first)

	d = openSplit(t, dir)
	has, err := d.Has(t.Context(), progress)
	require.NoError(t, err)
	require.False(t, has, "a record written for after the messages committed without them")
	require.NoError(t, d.Close())
}

// TestSplitLaterCommitsWithTheMessages: what a commit writes for after
// its messages is there once it returns.
func TestSplitLaterCommitsWithTheMessages(t *testing.T) {
	dir := t.TempDir()
	d := openSplit(t, dir)
	s, err := OpenStore(t.Context(), d)
	require.NoError(t, err)
	require.NoError(t, s.AddScope(t.Context(), splitScope))
	progress := resumeKey.ChildString("test")
	msgs := splitMsgs(10, 0)
	_, err = s.put(t.Context(), msgs, keysOfMsgs(msgs), func(ctx context.Context, w ds.Write) error {
		return w.Put(ctx, progress, []byte("done"))
	})
	require.NoError(t, err)
	v, err := d.Get(t.Context(), progress)
	require.NoError(t, err)
	require.Equal(t, "done", string(v))
	require.NoError(t, s.Close())
	require.NoError(t, d.Close())
}

// TestSplitDeletionKilledBetweenParts: a deletion whose tree is written
// but whose records are not deleted opens as if it had not run, and runs
// again.
func TestSplitDeletionKilledBetweenParts(t *testing.T) {
	dir, d, s, msgs := flushedSplit(t, 500)
	var err error
	cut := msgs[200].Timestamp
	kill := dieAfterMeta(t, d)
	_, err = s.DeleteBefore(t.Context(), splitScope, cut)
	require.Error(t, err)
	kill(s)
	requireWhole(t, dir, msgs)

	deleteAfterReopen(t, dir, cut, msgs)
}

// flushedSplit opens a store over a new folder of two LevelDBs, puts n
// messages into splitScope and flushes them into its tree.
func flushedSplit(t *testing.T, n int) (string, *splitStore, *Store, []reconcile.Message) {
	t.Helper()
	dir := t.TempDir()
	d := openSplit(t, dir)
	s, err := OpenStore(t.Context(), d)
	require.NoError(t, err)
	require.NoError(t, s.AddScope(t.Context(), splitScope))
	msgs := splitMsgs(n, 0)
	_, err = s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	require.NoError(t, s.flush(t.Context()))
	return dir, d, s, msgs
}

// keysOfMsgs returns the keys of msgs.
func keysOfMsgs(msgs []reconcile.Message) []reconcile.Key {
	keys := make([]reconcile.Key, len(msgs))
	for i := range msgs {
		keys[i] = msgs[i].Key()
	}
	return keys
}

// errDisk is the failure failPart injects.
var errDisk = errors.New("disk failure")

// failing makes the batches of d fail at part until the test restores it.
func failing(d *splitStore, part batchPart) func() {
	d.failPart = func(p batchPart) error {
		if p == part {
			return errDisk
		}
		return nil
	}
	return func() { d.failPart = nil }
}

// requireHolds checks that a live store holds exactly want in splitScope.
func requireHolds(t *testing.T, s *Store, want []reconcile.Message) {
	t.Helper()
	stats, _ := s.Stats(splitScope)
	require.Equal(t, uint64(len(want)), stats.Count)
	got, err := s.Get(t.Context(), splitScope, keysOfMsgs(want))
	require.NoError(t, err)
	for i, m := range got {
		require.NotNil(t, m, "message %d", i)
	}
	tree, ok := s.Tree(splitScope)
	require.True(t, ok)
	agg, err := tree.Verify(t.Context())
	require.NoError(t, err)
	require.Equal(t, stats.Root, agg.Fingerprint())
}

// TestSplitDeletionFailingBetweenParts: in a live store, a deletion whose
// tree is written and whose records are not fails, and the store holds
// every message as before it, in its tree too, takes new ones, reopens
// verified, and deletes them when asked again.
func TestSplitDeletionFailingBetweenParts(t *testing.T) {
	dir, d, s, msgs := flushedSplit(t, 500)
	var err error
	cut := msgs[200].Timestamp
	restore := failing(d, partRecords)
	_, err = s.DeleteBefore(t.Context(), splitScope, cut)
	require.ErrorIs(t, err, errDisk)
	restore()
	requireHolds(t, s, msgs)
	more := splitMsgs(100, 500)
	_, err = s.Put(t.Context(), more...)
	require.NoError(t, err)
	all := append(slices.Clone(msgs), more...)
	requireHolds(t, s, all)
	require.NoError(t, s.Close())
	require.NoError(t, d.Close())
	requireWhole(t, dir, all)

	deleteAfterReopen(t, dir, cut, all)
}

// deleteAfterReopen reopens the folder at dir, whose scope holds have,
// deletes the messages before cut, the first 200, and checks the store,
// live and reopened.
func deleteAfterReopen(t *testing.T, dir string, cut int64, have []reconcile.Message) {
	t.Helper()
	d := openSplit(t, dir)
	s, err := OpenStore(t.Context(), d)
	require.NoError(t, err)
	n, err := s.DeleteBefore(t.Context(), splitScope, cut)
	require.NoError(t, err)
	require.Equal(t, 200, n)
	requireHolds(t, s, have[200:])
	require.NoError(t, s.Close())
	require.NoError(t, d.Close())
	requireWhole(t, dir, have[200:])
}

// TestSplitCommitFailingBetweenParts: in a live store, a commit whose
// messages are not written stores nothing and takes them when given
// again; one whose messages are written and whose cursor is not reports
// the error and keeps the messages, in its state and on reopen.
func TestSplitCommitFailingBetweenParts(t *testing.T) {
	dir := t.TempDir()
	d := openSplit(t, dir)
	s, err := OpenStore(t.Context(), d)
	require.NoError(t, err)
	require.NoError(t, s.AddScope(t.Context(), splitScope))
	first, second, third := splitMsgs(100, 0), splitMsgs(100, 100), splitMsgs(100, 200)
	_, err = s.Put(t.Context(), first...)
	require.NoError(t, err)

	restore := failing(d, partRecords)
	_, err = s.Put(t.Context(), second...)
	require.ErrorIs(t, err, errDisk)
	restore()
	requireHolds(t, s, first)
	res, err := s.Put(t.Context(), second...)
	require.NoError(t, err)
	require.Len(t, res.Added, len(second), "nothing of the failed commit was stored")

	progress := resumeKey.ChildString("test")
	restore = failing(d, partAfter)
	_, err = s.put(t.Context(), third, keysOfMsgs(third), func(ctx context.Context, w ds.Write) error {
		return w.Put(ctx, progress, []byte("done"))
	})
	require.ErrorIs(t, err, errDisk)
	restore()
	all := append(append(slices.Clone(first), second...), third...)
	requireHolds(t, s, all)
	res, err = s.Put(t.Context(), third...)
	require.NoError(t, err)
	require.Equal(t, len(third), res.Duplicates, "the messages stored before the cursor failed are kept")
	has, err := d.Has(t.Context(), progress)
	require.NoError(t, err)
	require.False(t, has)
	require.NoError(t, s.Close())
	require.NoError(t, d.Close())
	requireWhole(t, dir, all)
}
