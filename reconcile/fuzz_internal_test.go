package reconcile

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/pb"
)

// FuzzDecodeNode reads arbitrary bytes as a stored node: a corrupt
// datastore must give an error, not a panic or a tree that lies.
func FuzzDecodeNode(f *testing.F) {
	k1 := Key{TS: 10, Hash: Hash{1}}
	k2 := Key{TS: 12, Hash: Hash{2}}
	f.Add(newNode(0, []entry{leafEntry(k1), leafEntry(k2)}).encode())
	inner := newNode(1, []entry{{key: k1, agg: Aggregate{Count: 3}}, {key: k2, agg: Aggregate{Count: 9}}})
	f.Add(inner.encode())
	f.Add(inner.encodeStored(nodeAddr{height: 1, open: true}))
	// A child closed by the size bound: the entries carry flags.
	k3 := Key{TS: 13, Hash: Hash{3, 31: 0xff}}
	forced := newNode(1, []entry{{key: k1, agg: Aggregate{Count: 3}}, {key: k3, agg: Aggregate{Count: 4096}, forced: true}})
	f.Add(forced.encode())
	f.Add(forced.encodeStored(nodeAddr{height: 1, open: true}))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, tail, err := decodeNode(data)
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(n.entries), maxNodeEntries)
		format := byte(nodeFull)
		if tail {
			format = nodeOpenTail
			require.Less(t, len(n.entries), maxNodeEntries, "room for the completed entry")
			require.Positive(t, n.height)
		} else {
			require.NotEmpty(t, n.entries)
		}
		again, againTail, err := decodeNode(n.encodeAs(format, n.entries))
		require.NoError(t, err)
		require.Equal(t, tail, againTail)
		require.Equal(t, n.entries, again.entries)
		require.Equal(t, n.height, again.height)
		for i, e := range n.entries {
			require.False(t, e.forced && (n.height == 0 || isBoundary(e.key, n.height-1)),
				"entry %d: only a child whose last key is no boundary is closed by the bound", i)
		}
	})
}

// FuzzDecodeCells reads arbitrary bytes as sketch cells.
func FuzzDecodeCells(f *testing.F) {
	f.Add(encodeCells(nil, []cell{{id: 7, check: checksum(7), count: 1}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		cells, err := decodeCells(data)
		if err != nil {
			return
		}
		require.True(t, bytes.Equal(data, encodeCells(nil, cells)))
		var p peeler
		p.extend(cells, make([]cell, len(cells)))
		p.peel() // must terminate on any input
	})
}

// FuzzDecodeMeta reads arbitrary bytes as the tree's meta record.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(nil))
	f.Add(encodeMeta(newNode(2, []entry{leafEntry(Key{TS: 3})})))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = decodeMeta(data)
	})
}

// FuzzParseAnswers: any bytes decode to at most the answers allowed, one
// encoding per list, and each answer rebuilds a key within its short ID's
// window that carries that short ID.
func FuzzParseAnswers(f *testing.F) {
	k := Key{TS: 1_700_000_000_123_456_789, Hash: Hash{1, 2, 3, 4}}
	f.Add(appendAnswers(nil, []answer{answerOf(k), {}, answerOf(Key{TS: 1 << 24, Hash: Hash{9}})}), uint64(keyID(&k)))
	f.Add([]byte{0x80, 0x80, 0x80, 0x08}, uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, id uint64) {
		as, err := parseAnswers(b, 16)
		if err != nil {
			require.True(t, errors.Is(err, ErrTooManyKeys) || errors.Is(err, ErrBadFrame), "%v", err)
			return
		}
		require.LessOrEqual(t, len(as), 16)
		require.Equal(t, string(b), string(appendAnswers(nil, as)), "one encoding per list")
		for _, a := range as {
			if !a.held {
				continue
			}
			key := a.key(ShortID(id))
			require.Equal(t, ShortID(id), keyID(&key))
			lo, hi := ShortID(id).window()
			require.False(t, key.Less(lo))
			require.True(t, key.Less(hi) || hi == End)
		}
	})
}

// FuzzParsePattern: any bytes decode, as a MATCH's pattern, to at most
// maxPatternCells increasing cell indices below cell_count, with one
// encoding per pattern, or fail as a malformed frame.
func FuzzParsePattern(f *testing.F) {
	f.Add(appendPattern(nil, []uint64{0, 1, 4, 9}), uint64(10), uint64(4))
	f.Add([]byte{0x80}, uint64(10), uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, cells, count uint64) {
		w := &pb.RangeItem{Mode: pb.Mode_MATCH, Pattern: b, CellCount: cells, Count: count}
		p, err := parsePattern(w)
		if err != nil {
			require.ErrorIs(t, err, ErrBadFrame)
			return
		}
		if len(b) == 0 {
			require.Empty(t, p)
			return
		}
		require.LessOrEqual(t, len(p), maxPatternCells)
		require.True(t, count >= 1 && count <= maxMatchKeys)
		for i, c := range p {
			require.Less(t, c, cells)
			if i > 0 {
				require.Greater(t, c, p[i-1])
			}
		}
		require.Equal(t, string(b), string(appendPattern(nil, p)), "one encoding per pattern")
	})
}
