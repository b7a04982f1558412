package reconcile

import (
	"container/list"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	ds "github.com/ipfs/go-datastore"
)

// nodeAddr locates a stored node. A node closed by a boundary key lives at
// (height, last key) and keeps that address while keys are added before
// its end; the rightmost node of a height, which no boundary closes, lives
// at (height, open) so that appending recent keys rewrites it in place.
// A parent finds a child's address from the child's last key alone.
type nodeAddr struct {
	height int
	open   bool
	last   Key
}

// addrFor returns the address of the node of the given height whose last
// key is last.
func addrFor(height int, last Key) nodeAddr {
	if isBoundary(last, height) {
		return nodeAddr{height: height, last: last}
	}
	return nodeAddr{height: height, open: true}
}

// nodeStore reads nodes from a datastore through a bounded LRU cache. The
// cache keeps the upper levels of a large tree in memory without ever
// needing the whole tree there. Safe for concurrent use: the cache is a
// small leaf structure behind its own mutex.
type nodeStore struct {
	d      ds.Read
	prefix ds.Key

	mu     sync.Mutex
	items  map[nodeAddr]*list.Element
	lru    list.List
	size   int
	budget int
}

type cached struct {
	addr nodeAddr
	node *node
}

func newNodeStore(d ds.Read, prefix ds.Key, budget int) *nodeStore {
	return &nodeStore{d: d, prefix: prefix, items: make(map[nodeAddr]*list.Element), budget: budget}
}

// key returns the datastore key of a node: /prefix/n/<height>/<key hex>,
// or /prefix/n/<height>/open for an open node. Hex keeps keys sorted like
// the tree, which keeps a height's nodes together on disk.
func (s *nodeStore) key(a nodeAddr) ds.Key {
	name := "open"
	if !a.open {
		name = hex.EncodeToString(a.last.Bytes())
	}
	return s.prefix.ChildString("n").ChildString(fmt.Sprintf("%02d", a.height)).ChildString(name)
}

// metaKey holds the tree's root locator.
func (s *nodeStore) metaKey() ds.Key { return s.prefix.ChildString("meta") }

// get returns the node at a, from the cache or the datastore.
func (s *nodeStore) get(ctx context.Context, a nodeAddr) (*node, error) {
	s.mu.Lock()
	if el, ok := s.items[a]; ok {
		s.lru.MoveToFront(el)
		n := el.Value.(*cached).node
		s.mu.Unlock()
		return n, nil
	}
	s.mu.Unlock()
	b, err := s.d.Get(ctx, s.key(a))
	if err != nil {
		if errors.Is(err, ds.ErrNotFound) {
			return nil, fmt.Errorf("%w: node %d/%v missing", ErrCorrupt, a.height, a.last)
		}
		return nil, fmt.Errorf("read tree node: %w", err)
	}
	n, err := decodeNode(b)
	if err != nil {
		return nil, err
	}
	if n.height != a.height {
		return nil, fmt.Errorf("%w: node at height %d claims %d", ErrCorrupt, a.height, n.height)
	}
	s.add(a, n)
	return n, nil
}

// add installs a node in the cache, evicting the least recently used.
func (s *nodeStore) add(a nodeAddr, n *node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[a]; ok {
		c := el.Value.(*cached)
		s.size += len(n.entries) - len(c.node.entries)
		c.node = n
		s.lru.MoveToFront(el)
	} else {
		s.items[a] = s.lru.PushFront(&cached{addr: a, node: n})
		s.size += len(n.entries)
	}
	for s.size > s.budget && s.lru.Len() > 1 {
		el := s.lru.Back()
		c := el.Value.(*cached)
		s.lru.Remove(el)
		delete(s.items, c.addr)
		s.size -= len(c.node.entries)
	}
}

// drop removes a node from the cache.
func (s *nodeStore) drop(a nodeAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[a]; ok {
		s.size -= len(el.Value.(*cached).node.entries)
		s.lru.Remove(el)
		delete(s.items, a)
	}
}
