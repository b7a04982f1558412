package reconcile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// entry is one element of a tree node. In a leaf (height 0) it is a key
// with count 1 and the key's own sum; in an internal node it stands for a
// child: the child's last key and the aggregate of the child's subtree.
type entry struct {
	key Key
	agg Aggregate
}

// leafEntry returns the leaf entry of a key.
func leafEntry(k Key) entry {
	return entry{key: k, agg: Aggregate{Count: 1, Sum: sumOf(&k.Hash)}}
}

// node is a tree node: a run of entries at one height, sorted by key. Nodes
// are immutable once built; an update builds new ones.
type node struct {
	height  int
	entries []entry
}

// last returns the node's last key; a stored node is never empty.
func (n *node) last() Key { return n.entries[len(n.entries)-1].key }

// aggregate returns the aggregate of the whole subtree.
func (n *node) aggregate() Aggregate {
	var a Aggregate
	for i := range n.entries {
		a = a.Add(n.entries[i].agg)
	}
	return a
}

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

// nodeFormat is the first byte of every encoded node.
const nodeFormat = 1

// maxNodeEntries bounds a decoded node. Content-defined chunking gives a
// node 32 entries on average; a run of 4096 keys without a boundary has
// probability about e^-128.
const maxNodeEntries = 1 << 16

// ErrCorrupt is wrapped by every error about a stored tree that breaks
// the tree's invariants: an undecodable or missing node, a bad meta
// record, or a failed Verify. Errors of the datastore itself are not.
var ErrCorrupt = errors.New("corrupt tree")

// encode serialises a node: format, height, entry count, then per entry
// the timestamp as a delta from the previous one, the hash, and for an
// internal node the count and the sum.
func (n *node) encode() []byte {
	per := 8 + HashSize
	if n.height > 0 {
		per += 8 + 32
	}
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(n.entries)*per)
	b = append(b, nodeFormat, byte(n.height))
	b = binary.AppendUvarint(b, uint64(len(n.entries)))
	var prev uint64
	for i := range n.entries {
		e := &n.entries[i]
		b = binary.AppendUvarint(b, e.key.TS-prev)
		prev = e.key.TS
		b = append(b, e.key.Hash[:]...)
		if n.height > 0 {
			b = binary.AppendUvarint(b, e.agg.Count)
			b = append(b, e.agg.Sum.Bytes()...)
		}
	}
	return b
}

// decodeNode parses the output of encode and checks what the tree relies
// on: keys strictly increasing, counts positive, no trailing bytes.
func decodeNode(b []byte) (*node, error) {
	if len(b) < 2 || b[0] != nodeFormat {
		return nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	n := &node{height: int(b[1])}
	if n.height > maxLevel+1 {
		return nil, fmt.Errorf("%w: height %d", ErrCorrupt, n.height)
	}
	b = b[2:]
	cnt, k := binary.Uvarint(b)
	if k <= 0 || cnt == 0 || cnt > maxNodeEntries {
		return nil, fmt.Errorf("%w: entry count", ErrCorrupt)
	}
	b = b[k:]
	n.entries = make([]entry, 0, cnt)
	var prev uint64
	for i := uint64(0); i < cnt; i++ {
		d, k := binary.Uvarint(b)
		if k <= 0 || len(b)-k < HashSize || d > MaxTimestamp-prev {
			return nil, fmt.Errorf("%w: entry %d", ErrCorrupt, i)
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
			if k <= 0 || c == 0 || len(b)-k < 32 {
				return nil, fmt.Errorf("%w: entry %d aggregate", ErrCorrupt, i)
			}
			e.agg = Aggregate{Count: c, Sum: SumFromBytes(b[k:])}
			b = b[k+32:]
		}
		if i > 0 && !n.entries[i-1].key.Less(e.key) {
			return nil, fmt.Errorf("%w: keys out of order", ErrCorrupt)
		}
		n.entries = append(n.entries, e)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b))
	}
	return n, nil
}
