package node

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/storesync/storesync/reconcile"
)

// scopeRecord is what the store persists about a scope: which scope it is
// and the count and sum of its messages as last committed. The tree's
// root aggregate must always equal agg; OpenStore checks it.
type scopeRecord struct {
	scope reconcile.Scope
	agg   reconcile.Aggregate
}

// recordFormat is the first byte of an encoded scope record; a change of
// the encoding takes a new value so that old stores are recognised.
const recordFormat = 1

// sumSize is the size of reconcile.Sum.Bytes.
const sumSize = 32

// errBadRecord is wrapped by every decoding error of a scope record.
var errBadRecord = errors.New("bad scope record")

// encode serialises the record: format, the two topics each as a uvarint
// length and its bytes, the count as 8 bytes big-endian and the sum.
func (r *scopeRecord) encode() []byte {
	p, c := r.scope.PubsubTopic, r.scope.ContentTopic
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(p)+len(c)+8+sumSize)
	b = append(b, recordFormat)
	b = binary.AppendUvarint(b, uint64(len(p)))
	b = append(b, p...)
	b = binary.AppendUvarint(b, uint64(len(c)))
	b = append(b, c...)
	b = binary.BigEndian.AppendUint64(b, r.agg.Count)
	return append(b, r.agg.Sum.Bytes()...)
}

// decodeScopeRecord parses the output of encode. It accepts only that
// output (minimal varints, non-empty topics, no trailing bytes), so that
// any two decodable records that differ mean different things.
func decodeScopeRecord(b []byte) (scopeRecord, error) {
	var r scopeRecord
	if len(b) < 1 || b[0] != recordFormat {
		return r, fmt.Errorf("%w: unknown format", errBadRecord)
	}
	b = b[1:]
	var err error
	if r.scope.PubsubTopic, b, err = readString(b); err != nil {
		return r, fmt.Errorf("%w: pubsub topic: %w", errBadRecord, err)
	}
	if r.scope.ContentTopic, b, err = readString(b); err != nil {
		return r, fmt.Errorf("%w: content topic: %w", errBadRecord, err)
	}
	if len(b) != 8+sumSize {
		return r, fmt.Errorf("%w: %d bytes after the topics, want %d", errBadRecord, len(b), 8+sumSize)
	}
	r.agg.Count = binary.BigEndian.Uint64(b)
	r.agg.Sum = reconcile.SumFromBytes(b[8:])
	return r, nil
}

// readString reads a non-empty string with a minimal uvarint length
// prefix and returns the rest of b.
func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	switch {
	case k <= 0:
		return "", nil, errors.New("bad length")
	case k != len(binary.AppendUvarint(nil, n)):
		return "", nil, errors.New("length not minimally encoded")
	case n == 0:
		return "", nil, errors.New("empty")
	case n > uint64(len(b)-k):
		return "", nil, errors.New("truncated")
	}
	end := k + int(n)
	return string(b[k:end]), b[end:], nil
}
