package reconcile

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// FingerprintSize is the size of a range fingerprint on the wire.
const FingerprintSize = 16

// Fingerprint identifies a set of messages: equal sets have equal
// fingerprints, and unequal sets collide with probability 2^-128.
type Fingerprint [FingerprintSize]byte

// Sum is the additive part of a fingerprint: the sum of the hashes of a
// set, read as little-endian 256-bit integers, modulo 2^256. Sums of
// disjoint sets add, so the fingerprint of any key range follows from the
// sums stored in the tree nodes that cover it. An XOR would add just as
// well but lets chosen pairs of hashes cancel; a sum does not.
type Sum [4]uint64

// sumOf returns the hash read as a little-endian 256-bit integer.
func sumOf(h *Hash) Sum { return SumFromBytes(h[:]) }

// Add returns s + o mod 2^256.
func (s Sum) Add(o Sum) Sum {
	var c uint64
	s[0], c = bits.Add64(s[0], o[0], 0)
	s[1], c = bits.Add64(s[1], o[1], c)
	s[2], c = bits.Add64(s[2], o[2], c)
	s[3], _ = bits.Add64(s[3], o[3], c)
	return s
}

// Sub returns s - o mod 2^256.
func (s Sum) Sub(o Sum) Sum {
	var b uint64
	s[0], b = bits.Sub64(s[0], o[0], 0)
	s[1], b = bits.Sub64(s[1], o[1], b)
	s[2], b = bits.Sub64(s[2], o[2], b)
	s[3], _ = bits.Sub64(s[3], o[3], b)
	return s
}

// AddHash returns s plus the hash.
func (s Sum) AddHash(h *Hash) Sum { return s.Add(sumOf(h)) }

// Bytes returns the 32-byte little-endian encoding.
func (s Sum) Bytes() []byte {
	var b [32]byte
	for i, w := range s {
		binary.LittleEndian.PutUint64(b[8*i:], w)
	}
	return b[:]
}

// SumFromBytes decodes the output of Sum.Bytes; b must hold 32 bytes.
func SumFromBytes(b []byte) Sum {
	return Sum{
		binary.LittleEndian.Uint64(b[0:]),
		binary.LittleEndian.Uint64(b[8:]),
		binary.LittleEndian.Uint64(b[16:]),
		binary.LittleEndian.Uint64(b[24:]),
	}
}

// Aggregate is what every tree entry carries about the keys below it:
// their count and their sum.
type Aggregate struct {
	Count uint64
	Sum   Sum
}

// Add returns the aggregate of the union of two disjoint sets.
func (a Aggregate) Add(o Aggregate) Aggregate {
	return Aggregate{Count: a.Count + o.Count, Sum: a.Sum.Add(o.Sum)}
}

// AddHash returns a with one more element.
func (a Aggregate) AddHash(h *Hash) Aggregate {
	return Aggregate{Count: a.Count + 1, Sum: a.Sum.AddHash(h)}
}

// SubHash returns a with one element fewer.
func (a Aggregate) SubHash(h *Hash) Aggregate {
	return Aggregate{Count: a.Count - 1, Sum: a.Sum.Sub(sumOf(h))}
}

// Fingerprint hashes the sum together with the count (SHA-256 over the
// 32-byte sum and the count as an unsigned varint, truncated to 16 bytes).
func (a Aggregate) Fingerprint() Fingerprint {
	var buf [32 + binary.MaxVarintLen64]byte
	copy(buf[:], a.Sum.Bytes())
	n := binary.PutUvarint(buf[32:], a.Count)
	d := sha256.Sum256(buf[:32+n])
	var f Fingerprint
	copy(f[:], d[:FingerprintSize])
	return f
}
