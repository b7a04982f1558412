package protocol_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// memStore is a protocol.Store over real trees in an in-memory
// datastore, with the messages in a map: what a node's store provides,
// without the node.
type memStore struct {
	mu     sync.Mutex
	d      ds.Batching
	trees  map[reconcile.Scope]*reconcile.Tree
	msgs   map[reconcile.Hash]reconcile.Message
	scopes map[[8]byte]reconcile.Scope
}

var _ protocol.Store = (*memStore)(nil)

func newMemStore(t testing.TB, scopes ...reconcile.Scope) *memStore {
	s := &memStore{d: dssync.MutexWrap(ds.NewMapDatastore()), trees: map[reconcile.Scope]*reconcile.Tree{},
		msgs: map[reconcile.Hash]reconcile.Message{}, scopes: map[[8]byte]reconcile.Scope{}}
	for i, sc := range scopes {
		tr, err := reconcile.Open(context.Background(), s.d, ds.NewKey(fmt.Sprintf("/t%d", i)))
		require.NoError(t, err)
		s.trees[sc], s.scopes[sc.ID()] = tr, sc
	}
	return s
}

func (s *memStore) ScopeByID(id [8]byte) (reconcile.Scope, bool) {
	sc, ok := s.scopes[id]
	return sc, ok
}

func (s *memStore) Set(sc reconcile.Scope) (reconcile.Set, bool) {
	t, ok := s.trees[sc]
	return t, ok
}

func (s *memStore) Get(_ context.Context, _ reconcile.Scope, keys []reconcile.Key) ([]*reconcile.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*reconcile.Message, len(keys))
	for i, k := range keys {
		if m, ok := s.msgs[k.Hash]; ok && m.Key() == k {
			out[i] = &m
		}
	}
	return out, nil
}

func (s *memStore) Has(_ context.Context, _ reconcile.Scope, k reconcile.Key) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.msgs[k.Hash]
	return ok && m.Key() == k, nil
}

func (s *memStore) Put(ctx context.Context, msgs []reconcile.Message) (int, error) {
	added := 0
	for _, m := range msgs {
		t, ok := s.trees[m.Scope()]
		if !ok {
			return added, fmt.Errorf("scope %v not kept", m.Scope())
		}
		s.mu.Lock()
		_, dup := s.msgs[m.Hash()]
		s.msgs[m.Hash()] = m
		s.mu.Unlock()
		if dup {
			continue
		}
		if _, _, err := t.Apply(ctx, []reconcile.Key{m.Key()}, nil); err != nil {
			return added, err
		}
		added++
	}
	return added, nil
}

// hashes returns the hashes stored for a scope.
func (s *memStore) hashes(sc reconcile.Scope) map[reconcile.Hash]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[reconcile.Hash]bool{}
	for h, m := range s.msgs {
		if m.Scope() == sc {
			out[h] = true
		}
	}
	return out
}

func (s *memStore) root(sc reconcile.Scope) reconcile.Aggregate { return s.trees[sc].Root() }

// msg returns a message of scope sc with a random payload.
func msg(sc reconcile.Scope, ts int64) reconcile.Message {
	p := make([]byte, 40)
	_, _ = rand.Read(p)
	return reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: p, Timestamp: ts}
}

// newHost returns a libp2p host listening on TCP on 127.0.0.1.
func newHost(t testing.TB) host.Host {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	require.NoError(t, err)
	t.Cleanup(func() { h.Close() })
	return h
}

// connect makes a know b's addresses and connects them.
func connect(t testing.TB, a, b host.Host) {
	require.NoError(t, a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}))
}

// node is a host with a mounted service and its store.
type node struct {
	h     host.Host
	svc   *protocol.Service
	store *memStore
}

func newNode(t testing.TB, scopes []reconcile.Scope, opts ...protocol.Option) *node {
	h := newHost(t)
	st := newMemStore(t, scopes...)
	svc, err := protocol.New(h, st, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	return &node{h: h, svc: svc, store: st}
}

func (n *node) put(t testing.TB, msgs ...reconcile.Message) {
	_, err := n.store.Put(context.Background(), msgs)
	require.NoError(t, err)
}
