package node_test

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// smallBatches make files of many batches of a few dozen messages.
var smallBatches = []snapshot.Option{snapshot.WithMaxMessageSize(1 << 10), snapshot.WithMaxBatchSize(4 << 10)}

// snapMsgs returns n distinct messages of sc: payloads of 0 to 200
// bytes, a meta on every fifth, timestamps that often repeat.
func snapMsgs(seed uint64, sc reconcile.Scope, n int) []reconcile.Message {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]reconcile.Message, n)
	ts := int64(1_700_000_000_000_000_000)
	for i := range out {
		if rng.IntN(2) == 0 {
			ts += rng.Int64N(1e9)
		}
		p := make([]byte, rng.IntN(201))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		m := reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: p, Timestamp: ts}
		if i%5 == 0 {
			m.Meta = []byte{'m', byte(i), byte(i >> 8), byte(i >> 16)}
		}
		out[i] = m
	}
	return out
}

// filledStore returns an in-memory store keeping sc with msgs.
func filledStore(t *testing.T, sc reconcile.Scope, msgs []reconcile.Message, opts ...node.StoreOption) (*node.Store, ds.Batching) {
	t.Helper()
	s, d := newMemStore(t, []reconcile.Scope{sc}, opts...)
	res, err := s.Put(t.Context(), msgs...)
	require.NoError(t, err)
	require.Empty(t, res.Rejected)
	return s, d
}

// exportTo exports sc from s to a new file in dir and returns its path.
func exportTo(t *testing.T, s *node.Store, sc reconcile.Scope, dir, name string, opts ...snapshot.Option) (string, snapshot.Header) {
	t.Helper()
	path := filepath.Join(dir, name)
	h, err := s.ExportFile(t.Context(), sc, path, opts...)
	require.NoError(t, err)
	return path, h
}

// dump returns every record of a datastore.
func dump(t *testing.T, d ds.Datastore) map[string]string {
	t.Helper()
	res, err := d.Query(t.Context(), dsq.Query{})
	require.NoError(t, err)
	entries, err := res.Rest()
	require.NoError(t, err)
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[e.Key] = string(e.Value)
	}
	return out
}

// importRecord returns a scope's import record, nil if there is none.
func importRecord(t *testing.T, d ds.Datastore, sc reconcile.Scope) []byte {
	t.Helper()
	id := sc.ID()
	b, err := d.Get(t.Context(), ds.NewKey("/storesync/resume/import").ChildString(hex.EncodeToString(id[:])))
	if errors.Is(err, ds.ErrNotFound) {
		return nil
	}
	require.NoError(t, err)
	return b
}

// writeVariant writes b to a new file in dir and returns its path.
func writeVariant(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// goodAndBadSnapshot exports msgs of scopeA in small batches and returns
// the file, its header, and a copy damaged in its last batch, which a
// reader finds bad only at its end.
func goodAndBadSnapshot(t *testing.T, msgs []reconcile.Message) (good string, h snapshot.Header, bad string) {
	t.Helper()
	src, _ := filledStore(t, scopeA, msgs)
	dir := t.TempDir()
	good, h = exportTo(t, src, scopeA, dir, "a.snap", smallBatches...)
	b, err := os.ReadFile(good)
	require.NoError(t, err)
	b[len(b)-60] ^= 0x10 // in the last batch
	return good, h, writeVariant(t, dir, "bad.snap", b)
}

// requireScope checks that a store's scope holds exactly the keys of want.
func requireScope(t *testing.T, s *node.Store, sc reconcile.Scope, want []reconcile.Message) {
	t.Helper()
	st, ok := s.Stats(sc)
	require.True(t, ok)
	require.Equal(t, uint64(len(sortedKeys(want))), st.Count)
	require.Equal(t, fingerprintOf(t, want), st.Root)
	if len(want) == 0 {
		require.Empty(t, treeKeys(t, s, sc))
		return
	}
	require.Equal(t, sortedKeys(want), treeKeys(t, s, sc))
}

// outsider is a message of scopeA in no test file (timestamped 1, with
// a seed no file uses): a store that holds it keeps a scope with a
// message, into which an import takes two passes.
var outsider = msg(scopeA, 1, 0x6f7574)

// keepOutsider makes s keep scopeA, holding outsider.
func keepOutsider(t *testing.T, s *node.Store) {
	t.Helper()
	require.NoError(t, s.AddScope(t.Context(), scopeA))
	res, err := s.Put(t.Context(), outsider)
	require.NoError(t, err)
	require.Len(t, res.Added, 1)
}

// startHeldImport imports path into s on a goroutine of its own, which
// stops at the first progress event that at accepts until let is called
// (or the test ends, before the store's Close, which waits for the
// import). It returns once the import stands there; done yields the
// import's error.
func startHeldImport(t *testing.T, s *node.Store, path string, at func(protocol.Progress) bool) (done <-chan error, let func()) {
	t.Helper()
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	let = func() { once.Do(func() { close(release) }) }
	t.Cleanup(let)
	ctx := protocol.WithProgress(t.Context(), func(p protocol.Progress) {
		if !at(p) {
			return
		}
		select {
		case <-held:
		default:
			close(held)
			<-release
		}
	})
	errs := make(chan error, 1)
	go func() {
		_, err := s.ImportFile(ctx, path)
		errs <- err
	}()
	<-held
	return errs, let
}
