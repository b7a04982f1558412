package node_test

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

var (
	scopeA = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/chat/1/room-a/proto"}
	scopeB = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/chat/1/room-b/proto"}
	// scopeX is never kept.
	scopeX = reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/chat/1/elsewhere/proto"}
)

// newMemStore opens a store over an in-memory datastore keeping scopes.
func newMemStore(t testing.TB, scopes []reconcile.Scope, opts ...node.StoreOption) (*node.Store, ds.Batching) {
	t.Helper()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	return openWith(t, d, scopes, opts...), d
}

// openWith opens a store over d, adds scopes and closes it at cleanup.
func openWith(t testing.TB, d ds.Batching, scopes []reconcile.Scope, opts ...node.StoreOption) *node.Store {
	t.Helper()
	s, err := node.OpenStore(t.Context(), d, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	for _, sc := range scopes {
		require.NoError(t, s.AddScope(t.Context(), sc))
	}
	return s
}

// openLevel opens a LevelDB datastore in dir; the caller closes it.
func openLevel(t testing.TB, dir string) ds.Batching {
	t.Helper()
	d, err := node.OpenLevelDB(dir)
	require.NoError(t, err)
	return d
}

// msg returns a message of sc at ts whose payload is derived from seed.
func msg(sc reconcile.Scope, ts int64, seed uint64) reconcile.Message {
	p := binary.BigEndian.AppendUint64(nil, seed)
	return reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: p, Timestamp: ts}
}

// randMsgs returns n distinct messages of sc with timestamps in [1, span].
func randMsgs(r *rand.Rand, sc reconcile.Scope, n int, span int64) []reconcile.Message {
	out := make([]reconcile.Message, n)
	for i := range out {
		out[i] = msg(sc, 1+r.Int64N(span), r.Uint64())
	}
	return out
}

// sortedKeys returns the distinct keys of msgs in key order: the model
// of a scope's contents.
func sortedKeys(msgs []reconcile.Message) []reconcile.Key {
	keys := make([]reconcile.Key, len(msgs))
	for i := range msgs {
		keys[i] = msgs[i].Key()
	}
	return reconcile.NewSliceSet(keys)
}

// fingerprintOf returns the root fingerprint of a set of messages.
func fingerprintOf(t testing.TB, msgs []reconcile.Message) reconcile.Fingerprint {
	t.Helper()
	set := reconcile.NewSliceSet(sortedKeys(msgs))
	agg, err := set.Aggregate(t.Context(), reconcile.Key{}, reconcile.End)
	require.NoError(t, err)
	return agg.Fingerprint()
}

// keysOfMessages returns the keys of msgs in the given order.
func keysOfMessages(msgs []reconcile.Message) []reconcile.Key {
	out := make([]reconcile.Key, len(msgs))
	for i := range msgs {
		out[i] = msgs[i].Key()
	}
	return out
}

// treeKeys returns every key of a scope's tree.
func treeKeys(t testing.TB, s *node.Store, sc reconcile.Scope) []reconcile.Key {
	t.Helper()
	set, ok := s.Set(sc)
	require.True(t, ok)
	var out []reconcile.Key
	require.NoError(t, set.Iterate(t.Context(), reconcile.Key{}, reconcile.End, func(k reconcile.Key) error {
		out = append(out, k)
		return nil
	}))
	return out
}

// keysOf returns the keys of msgs in order.
func keysOf(msgs []reconcile.Message) []reconcile.Key {
	out := make([]reconcile.Key, len(msgs))
	for i := range msgs {
		out[i] = msgs[i].Key()
	}
	return out
}

// filterMsgs returns the messages keep accepts.
func filterMsgs(msgs []reconcile.Message, keep func(reconcile.Message) bool) []reconcile.Message {
	return slices.DeleteFunc(slices.Clone(msgs), func(m reconcile.Message) bool { return !keep(m) })
}
