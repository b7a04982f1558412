package reconcile

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
)

// HashSize is the size of a message hash in bytes.
const HashSize = 32

// KeySize is the size of an encoded Key: 8 bytes of timestamp, then the hash.
const KeySize = 8 + HashSize

// Hash is a Waku deterministic message hash (SHA-256).
type Hash [HashSize]byte

// String returns the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash decodes a 64-digit hex string.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil {
		return h, fmt.Errorf("parse hash: %w", err)
	}
	if len(b) != HashSize {
		return h, fmt.Errorf("parse hash: %d bytes, want %d", len(b), HashSize)
	}
	copy(h[:], b)
	return h, nil
}

// Key orders messages within a scope: by timestamp, then by hash. A time
// window is therefore a key range, and recent messages sit at the right
// edge of a tree.
//
// Keys of stored messages have a timestamp in [1, MaxTimestamp]; the zero
// Key sorts before all of them and End after all of them, so the pair
// (Key{}, End) is the whole key space.
type Key struct {
	TS   uint64
	Hash Hash
}

// MaxTimestamp is the largest timestamp a stored message may carry.
const MaxTimestamp = math.MaxInt64

// End is an upper bound above every valid key.
var End = Key{TS: math.MaxUint64}

// Compare returns -1, 0 or +1 as k sorts before, equal to or after o.
func (k Key) Compare(o Key) int {
	switch {
	case k.TS < o.TS:
		return -1
	case k.TS > o.TS:
		return 1
	}
	return bytes.Compare(k.Hash[:], o.Hash[:])
}

// Less reports whether k sorts before o.
func (k Key) Less(o Key) bool { return k.Compare(o) < 0 }

// Bytes returns the 40-byte big-endian encoding, which sorts like the key.
func (k Key) Bytes() []byte {
	var b [KeySize]byte
	binary.BigEndian.PutUint64(b[:8], k.TS)
	copy(b[8:], k.Hash[:])
	return b[:]
}

// String returns "ts:hash" for logs.
func (k Key) String() string {
	if k == End {
		return "end"
	}
	return fmt.Sprintf("%d:%x", k.TS, k.Hash[:6])
}

// errKeySize is returned when a byte slice does not hold exactly one key.
var errKeySize = errors.New("key: want 40 bytes")

// KeyFromBytes decodes the output of Key.Bytes.
func KeyFromBytes(b []byte) (Key, error) {
	var k Key
	if len(b) != KeySize {
		return k, errKeySize
	}
	k.TS = binary.BigEndian.Uint64(b[:8])
	copy(k.Hash[:], b[8:])
	return k, nil
}

// Next returns the smallest key above k: the bound that cuts just above
// it, so that [Next(), hi) leaves k out.
func (k Key) Next() Key {
	for i := HashSize - 1; i >= 0; i-- {
		k.Hash[i]++
		if k.Hash[i] != 0 {
			return k
		}
	}
	return TimeBound(k.TS + 1)
}

// TimeBound returns the smallest key with timestamp ts: the bound that
// splits a key space between ts-1 and ts.
func TimeBound(ts uint64) Key { return Key{TS: ts} }

// level is the height up to which a key ends tree nodes: a key of level L
// closes the node that holds it at heights 0..L-1. It counts the leading
// zero base-32 digits of the hash's last eight bytes, so it depends on the
// key alone (history independence) and is independent of the bytes that
// seed the sketch and the checksum.
func level(k Key) int {
	v := binary.BigEndian.Uint64(k.Hash[24:])
	n := 0
	for v>>(64-fanoutBits) == 0 && n < maxLevel {
		v <<= fanoutBits
		n++
	}
	return n
}

const (
	// fanoutBits sets the expected fanout of a tree node to 2^fanoutBits.
	// It is part of the protocol: peers with different fanouts still
	// reconcile correctly, but their node boundaries no longer line up.
	fanoutBits = 5
	maxLevel   = 64 / fanoutBits
)
