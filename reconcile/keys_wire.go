package reconcile

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// KeyWireMax is the most bytes one key takes in a key list.
const KeyWireMax = binary.MaxVarintLen64 + HashSize

var (
	// ErrBadKeyList is wrapped by every error about a malformed key
	// list.
	ErrBadKeyList = errors.New("malformed key list")
	// ErrTooManyKeys is returned for a key list longer than allowed.
	ErrTooManyKeys = errors.New("too many keys")
)

// AppendKeys appends keys, which must be strictly increasing message keys,
// in the key list encoding: per key, its timestamp's distance from the
// previous key's (from 0 for the first) as a uvarint, then its 32-byte
// hash. Keys in order cost a few bytes more than their hashes: a
// transfer asks for messages by key, which the store reads directly.
func AppendKeys(b []byte, keys []Key) []byte {
	var prev uint64
	for i := range keys {
		b = binary.AppendUvarint(b, keys[i].TS-prev)
		b = append(b, keys[i].Hash[:]...)
		prev = keys[i].TS
	}
	return b
}

// KeysSize returns the length of AppendKeys(nil, keys).
func KeysSize(keys []Key) int {
	n := 0
	var prev uint64
	for i := range keys {
		n += uvarintLen(keys[i].TS-prev) + HashSize
		prev = keys[i].TS
	}
	return n
}

// readUvarint reads a uvarint from the start of b in its one shortest
// encoding, which every decoder of the wire requires: n is 0 when b
// does not start with one.
func readUvarint(b []byte) (v uint64, n int) {
	v, n = binary.Uvarint(b)
	if n <= 0 || n != uvarintLen(v) {
		return 0, 0
	}
	return v, n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// ParseKeys decodes a key list of at most max keys (ErrTooManyKeys
// beyond). It accepts only what
// AppendKeys writes: minimal uvarints, keys of stored messages
// (timestamps in [1, MaxTimestamp]) strictly increasing, nothing left
// over.
func ParseKeys(b []byte, max int) ([]Key, error) {
	var out []Key
	var prev Key
	for len(b) > 0 {
		if len(out) == max {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyKeys, max)
		}
		d, n := readUvarint(b)
		if n == 0 || len(b)-n < HashSize {
			return nil, fmt.Errorf("%w: key %d", ErrBadKeyList, len(out))
		}
		var k Key
		if d > MaxTimestamp-prev.TS {
			return nil, fmt.Errorf("%w: key %d: timestamp out of range", ErrBadKeyList, len(out))
		}
		k.TS = prev.TS + d
		copy(k.Hash[:], b[n:n+HashSize])
		if k.TS == 0 || (len(out) > 0 && !prev.Less(k)) {
			return nil, fmt.Errorf("%w: key %d out of order", ErrBadKeyList, len(out))
		}
		out = append(out, k)
		prev = k
		b = b[n+HashSize:]
	}
	return out, nil
}
