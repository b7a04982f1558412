package node_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	ds "github.com/ipfs/go-datastore"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// exportStores returns a store of sc holding msgs over memory and one
// over LevelDB, whose export reads on another path (one range), each
// with its datastore.
func exportStores(t *testing.T, sc reconcile.Scope, msgs []reconcile.Message) map[string]struct {
	s *node.Store
	d ds.Batching
} {
	mem, md := filledStore(t, sc, msgs)
	ld := openLevel(t, t.TempDir())
	t.Cleanup(func() { ld.Close() }) // after the store's Close
	lvl := openWith(t, ld, []reconcile.Scope{sc})
	_, err := lvl.Put(t.Context(), msgs...)
	require.NoError(t, err)
	return map[string]struct {
		s *node.Store
		d ds.Batching
	}{"memory": {mem, md}, "leveldb": {lvl, ld}}
}

// TestExportStopsWhenCancelled: cancelling an export part way stops the
// store's reading and the writing alike, returns the context's error
// and leaves no file. The scope makes about 100 batches.
func TestExportStopsWhenCancelled(t *testing.T) {
	msgs := snapMsgs(21, scopeA, 4000)
	for name, c := range exportStores(t, scopeA, msgs) {
		ctx, cancel := context.WithCancel(t.Context())
		batches := 0
		ctx = protocol.WithProgress(ctx, func(p protocol.Progress) {
			if p.Kind == node.ProgressExport {
				if batches++; batches == 3 {
					cancel()
				}
			}
		})
		dir := t.TempDir()
		_, err := c.s.ExportFile(ctx, scopeA, filepath.Join(dir, "a.snap"), smallBatches...)
		cancel()
		require.ErrorIs(t, err, context.Canceled, name)
		// A cancel is seen between chunks of records: the export stops
		// within one, far from the end.
		require.Less(t, batches, 30, "%s: batches written", name)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries, name)
	}
}

// TestExportRefusesADamagedRecord: a stored message that no longer
// matches its record's key, far into the scope, fails the export with
// ErrCorrupt and leaves no file.
func TestExportRefusesADamagedRecord(t *testing.T) {
	msgs := snapMsgs(22, scopeA, 3000)
	var victim reconcile.Message
	target := sortedKeys(msgs)[2500]
	for _, m := range msgs {
		if m.Key() == target {
			victim = m
		}
	}
	enc, err := victim.ToPB().Marshal()
	require.NoError(t, err)
	forged := victim
	forged.Payload = append([]byte("forged"), victim.Payload...)
	bad, err := forged.ToPB().Marshal()
	require.NoError(t, err)
	for name, c := range exportStores(t, scopeA, msgs) {
		found := 0
		for k, v := range dump(t, c.d) {
			if v == string(enc) {
				require.NoError(t, c.d.Put(t.Context(), ds.NewKey(k), bad))
				found++
			}
		}
		require.Equal(t, 1, found, name)
		dir := t.TempDir()
		_, err := c.s.ExportFile(t.Context(), scopeA, filepath.Join(dir, "a.snap"), smallBatches...)
		require.ErrorIs(t, err, node.ErrCorrupt, name)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries, name)
	}
}
