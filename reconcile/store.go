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
// key is last and which the size bound closed or not (forced): a closed
// node lives at its last key, the open one at its height's open address.
func addrFor(height int, last Key, forced bool) nodeAddr {
	if forced || isBoundary(last, height) {
		return nodeAddr{height: height, last: last}
	}
	return nodeAddr{height: height, open: true}
}

// addrOf returns the address of n.
func addrOf(n *node) nodeAddr { return addrFor(n.height, n.last(), n.forcedClosed()) }

// childAddr returns the address of the child that parent's i-th entry
// stands for.
func childAddr(parent *node, i int) nodeAddr {
	e := &parent.entries[i]
	return addrFor(parent.height-1, e.key, e.forced)
}

// less orders addresses of one height as their nodes lie in the tree:
// by last key, the open node after every closed one.
func (a nodeAddr) less(b nodeAddr) bool {
	if a.open || b.open {
		return !a.open && b.open
	}
	return a.last.Less(b.last)
}

// nodeStore reads nodes from a datastore through a bounded LRU cache. The
// cache keeps the upper levels of a large tree in memory without ever
// needing the whole tree there: leaves and internal nodes are kept in two
// lists, and leaves go first, so that a read of many leaves (Iterate, a
// sketch's first fill) never evicts the internal nodes every read passes
// through. Safe for concurrent use: the cache is a
// small leaf structure behind its own mutex.
type nodeStore struct {
	d      ds.Read
	prefix ds.Key
	// heights holds "<prefix>/n/<height>/" for every height, built once:
	// a Txn names a node per change.
	heights [maxLevel + 2]string

	mu     sync.Mutex
	items  map[nodeAddr]*list.Element
	lru    [2]list.List // by kind: leaves (0), internal nodes (1)
	size   int
	budget int
}

type cached struct {
	addr nodeAddr
	node *node
}

func newNodeStore(d ds.Read, prefix ds.Key, budget int) *nodeStore {
	s := &nodeStore{d: d, prefix: prefix, items: make(map[nodeAddr]*list.Element), budget: budget}
	for h := range s.heights {
		s.heights[h] = prefix.ChildString("n").ChildString(fmt.Sprintf("%02d", h)).String() + "/"
	}
	return s
}

// key returns the datastore key of a node: /prefix/n/<height>/<key hex>,
// or /prefix/n/<height>/open for an open node. Hex keeps keys sorted like
// the tree, which keeps a height's nodes together on disk.
func (s *nodeStore) key(a nodeAddr) ds.Key {
	if a.open {
		return ds.RawKey(s.heights[a.height] + "open")
	}
	return ds.RawKey(s.heights[a.height] + hex.EncodeToString(a.last.Bytes()))
}

// metaKey holds the tree's root locator.
func (s *nodeStore) metaKey() ds.Key { return s.prefix.ChildString("meta") }

// get returns the node at a, from the cache or the datastore; a node
// that is not there is ErrCorrupt.
func (s *nodeStore) get(ctx context.Context, a nodeAddr) (*node, error) {
	return s.read(ctx, a, true)
}

// scan is get for a read of many leaves that will not be read again
// soon (a sketch memo's first fill): a leaf it reads is not cached.
func (s *nodeStore) scan(ctx context.Context, a nodeAddr) (*node, error) {
	return s.read(ctx, a, a.height > 0)
}

func (s *nodeStore) read(ctx context.Context, a nodeAddr, cache bool) (*node, error) {
	n, ok, err := s.lookup(ctx, a, cache)
	if err == nil && !ok {
		err = fmt.Errorf("%w: node %d/%v missing", ErrCorrupt, a.height, a.last)
	}
	return n, err
}

// lookup returns the node at a if there is one. A node stored without its
// last entry (nodeOpenTail) comes back whole: the entry is completed from
// the open node of the height below.
func (s *nodeStore) lookup(ctx context.Context, a nodeAddr, cache bool) (*node, bool, error) {
	s.mu.Lock()
	if el, ok := s.items[a]; ok {
		n := el.Value.(*cached).node
		s.lru[kind(a)].MoveToFront(el)
		s.mu.Unlock()
		return n, true, nil
	}
	s.mu.Unlock()
	b, err := s.d.Get(ctx, s.key(a))
	if err != nil {
		if errors.Is(err, ds.ErrNotFound) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("read tree node: %w", err)
	}
	n, tail, err := decodeNode(b)
	if err != nil {
		return nil, false, err
	}
	if n.height != a.height || (tail && !a.open) {
		return nil, false, fmt.Errorf("%w: node at height %d claims %d", ErrCorrupt, a.height, n.height)
	}
	if tail {
		c, err := s.get(ctx, nodeAddr{height: a.height - 1, open: true})
		if err != nil {
			return nil, false, err
		}
		last := c.last()
		if c.closed() || (len(n.entries) > 0 && !n.last().Less(last)) {
			return nil, false, fmt.Errorf("%w: open node at height %d does not continue its parent", ErrCorrupt, c.height)
		}
		n.entries = append(n.entries, entry{key: last, agg: c.aggregate()})
		n.sum()
	}
	if cache {
		s.add(a, n)
	}
	return n, true, nil
}

// kind is the list of the cache a node at a belongs to.
func kind(a nodeAddr) int { return min(a.height, 1) }

// add installs a node in the cache, evicting the least recently used
// leaf, or internal node when no leaf is left.
func (s *nodeStore) add(a nodeAddr, n *node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[a]; ok {
		c := el.Value.(*cached)
		s.size += len(n.entries) - len(c.node.entries)
		c.node = n
		s.lru[kind(a)].MoveToFront(el)
	} else {
		s.items[a] = s.lru[kind(a)].PushFront(&cached{addr: a, node: n})
		s.size += len(n.entries)
	}
	for s.size > s.budget && s.lru[0].Len()+s.lru[1].Len() > 1 {
		l := &s.lru[0]
		if l.Len() == 0 {
			l = &s.lru[1]
		}
		el := l.Back()
		c := el.Value.(*cached)
		l.Remove(el)
		delete(s.items, c.addr)
		s.size -= len(c.node.entries)
	}
}

// setBudget changes the cache's bound; a lower one takes effect as
// nodes are added.
func (s *nodeStore) setBudget(n int) {
	s.mu.Lock()
	s.budget = n
	s.mu.Unlock()
}

// drop removes a node from the cache.
func (s *nodeStore) drop(a nodeAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[a]; ok {
		s.size -= len(el.Value.(*cached).node.entries)
		s.lru[kind(a)].Remove(el)
		delete(s.items, a)
	}
}
