package reconcile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// entry is one element of a tree node. In a leaf (height 0) it is a key
// with count 1 and the key's own sum; in an internal node it stands for a
// child: the child's last key and the aggregate of the child's subtree,
// and whether the child was closed by the size bound alone (forced: it
// holds maxNodeEntries entries and its last key is no boundary), which
// says where the child is stored.
type entry struct {
	key    Key
	agg    Aggregate
	forced bool
}

// parentEntry returns the entry that stands for c in its parent.
func parentEntry(c *node) entry {
	return entry{key: c.last(), agg: c.aggregate(), forced: c.forcedClosed()}
}

// leafEntry returns the leaf entry of a key.
func leafEntry(k Key) entry {
	return entry{key: k, agg: Aggregate{Count: 1, Sum: sumOf(&k.Hash)}}
}

// node is a tree node: a run of entries at one height, sorted by key. Nodes
// are immutable once built (newNode, or completed by the store on
// reading); an update builds new ones.
type node struct {
	height  int
	entries []entry
	agg     Aggregate // of all entries, computed once
}

// newNode returns a node of the entries, with its aggregate.
func newNode(height int, entries []entry) *node {
	n := &node{height: height, entries: entries}
	n.sum()
	return n
}

// sum computes the node's aggregate; every constructor calls it once the
// entries are final.
func (n *node) sum() {
	var a Aggregate
	for i := range n.entries {
		a = a.Add(n.entries[i].agg)
	}
	n.agg = a
}

// last returns the node's last key; a stored node is never empty.
func (n *node) last() Key { return n.entries[len(n.entries)-1].key }

// aggregate returns the aggregate of the whole subtree.
func (n *node) aggregate() Aggregate { return n.agg }

// search returns the index of the first entry whose key is >= k (> k when
// strict), or len(entries) when there is none.
func (n *node) search(k Key, strict bool) int {
	return sort.Search(len(n.entries), func(i int) bool {
		c := n.entries[i].key.Compare(k)
		return c > 0 || (c == 0 && !strict)
	})
}

// isBoundary reports whether key ends its node at the given height.
func isBoundary(k Key, height int) bool { return level(k) > height }

// closes reports whether a node of the given height whose last entry has
// key k and which holds n entries is closed: by a boundary key, or by the
// size bound. Chunking is greedy from the left, so the bound counts from
// the previous close and the nodes are a function of the sorted entries
// alone: the tree stays history independent.
func closes(k Key, height, n int) bool { return n >= maxNodeEntries || isBoundary(k, height) }

// closed reports whether n ends where its height's chunking closes a
// node; only the rightmost node of a height may be open.
func (n *node) closed() bool { return closes(n.last(), n.height, len(n.entries)) }

// forcedClosed reports whether n is closed by the size bound alone.
func (n *node) forcedClosed() bool {
	return len(n.entries) >= maxNodeEntries && !isBoundary(n.last(), n.height)
}

// The first byte of a stored node says how it is stored.
const (
	// nodeFull: the node whole.
	nodeFull = 1
	// nodeOpenTail: the rightmost node of a height above 0 whose last
	// child is the rightmost node of the height below (an open node),
	// stored without the entry for that child. The entry is the child's
	// last key and aggregate, which the store completes when it reads the
	// node. That entry changes with every key added at the right edge of
	// the tree; leaving it out makes an insert at the edge rewrite the
	// open leaf alone, not every node of the right spine.
	nodeOpenTail = 2
	// withFlags is added to nodeFull or nodeOpenTail for an internal node
	// one of whose entries is forced: each entry's count is then stored
	// shifted left by one, its low bit the forced flag. A tree with no
	// forced node, which is every tree whose keys were not ground, is
	// stored exactly as before the size bound existed.
	withFlags = 2
)

// maxNodeEntries bounds every node, on write and on read: a node closes
// at its height's next boundary key or at this many entries, whichever
// comes first (closes). Content-defined boundaries give a node 32 entries
// on average, and a run of 4096 keys without a boundary has probability
// about e^-130, so only keys whose hashes were ground to avoid boundaries
// ever meet the bound; it keeps any such run in nodes of bounded size.
// It is part of the stored format: a variable only so that tests can
// make runs that meet it small.
var maxNodeEntries = 4096

// ErrCorrupt is wrapped by every error about a stored tree that breaks
// the tree's invariants: an undecodable or missing node, a bad meta
// record, or a failed Verify. Errors of the datastore itself are not.
var ErrCorrupt = errors.New("corrupt tree")

// encode serialises a node whole: format, height, entry count, then per
// entry the timestamp as a delta from the previous one, the hash, and for
// an internal node the count and the sum.
func (n *node) encode() []byte { return n.encodeAs(nodeFull, n.entries) }

// encodeStored returns the bytes n is stored as at address a: without its
// last entry when that entry stands for an open node (see nodeOpenTail).
func (n *node) encodeStored(a nodeAddr) []byte {
	if a.open && n.height > 0 {
		if e := n.entries[len(n.entries)-1]; !isBoundary(e.key, n.height-1) && !e.forced {
			return n.encodeAs(nodeOpenTail, n.entries[:len(n.entries)-1])
		}
	}
	return n.encode()
}

func (n *node) encodeAs(format byte, entries []entry) []byte {
	per := 8 + HashSize
	if n.height > 0 {
		per += 8 + 32
	}
	flags := false
	for i := range entries {
		flags = flags || entries[i].forced
	}
	if flags {
		format += withFlags
	}
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(entries)*per)
	b = append(b, format, byte(n.height))
	b = binary.AppendUvarint(b, uint64(len(entries)))
	var prev uint64
	for i := range entries {
		e := &entries[i]
		b = binary.AppendUvarint(b, e.key.TS-prev)
		prev = e.key.TS
		b = append(b, e.key.Hash[:]...)
		if n.height > 0 {
			c := e.agg.Count
			if flags {
				c <<= 1
				if e.forced {
					c |= 1
				}
			}
			b = binary.AppendUvarint(b, c)
			b = append(b, e.agg.Sum.Bytes()...)
		}
	}
	return b
}

// decodeNode parses the output of encodeStored and checks what the tree
// relies on: keys strictly increasing, counts positive, no trailing
// bytes. tail reports a node stored without its last entry
// (nodeOpenTail), which the caller must complete.
func decodeNode(b []byte) (n *node, tail bool, err error) {
	if len(b) < 2 || b[0] < nodeFull || b[0] > nodeOpenTail+withFlags {
		return nil, false, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	format, flags := b[0], false
	if format > nodeOpenTail {
		format, flags = format-withFlags, true
	}
	tail = format == nodeOpenTail
	n = &node{height: int(b[1])}
	if n.height > maxLevel+1 || ((tail || flags) && n.height == 0) {
		return nil, false, fmt.Errorf("%w: height %d", ErrCorrupt, n.height)
	}
	b = b[2:]
	cnt, k := binary.Uvarint(b)
	if k <= 0 || (cnt == 0 && !tail) || cnt > uint64(maxNodeEntries) || (tail && cnt == uint64(maxNodeEntries)) {
		return nil, false, fmt.Errorf("%w: entry count", ErrCorrupt)
	}
	b = b[k:]
	n.entries = make([]entry, 0, cnt+1) // room for a tail's last entry
	var prev uint64
	for i := uint64(0); i < cnt; i++ {
		d, k := binary.Uvarint(b)
		if k <= 0 || len(b)-k < HashSize || d > MaxTimestamp-prev {
			return nil, false, fmt.Errorf("%w: entry %d", ErrCorrupt, i)
		}
		var e entry
		e.key.TS = prev + d
		prev = e.key.TS
		copy(e.key.Hash[:], b[k:])
		b = b[k+HashSize:]
		if n.height == 0 {
			e.agg = Aggregate{Count: 1, Sum: sumOf(&e.key.Hash)}
		} else {
			c, k := binary.Uvarint(b)
			if flags {
				e.forced, c = c&1 == 1, c>>1
			}
			if k <= 0 || c == 0 || len(b)-k < 32 || (e.forced && isBoundary(e.key, n.height-1)) {
				return nil, false, fmt.Errorf("%w: entry %d aggregate", ErrCorrupt, i)
			}
			e.agg = Aggregate{Count: c, Sum: SumFromBytes(b[k:])}
			b = b[k+32:]
		}
		if i > 0 && !n.entries[i-1].key.Less(e.key) {
			return nil, false, fmt.Errorf("%w: keys out of order", ErrCorrupt)
		}
		n.entries = append(n.entries, e)
	}
	if len(b) != 0 {
		return nil, false, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b))
	}
	n.sum()
	return n, tail, nil
}
