package snapshot

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/storesync/storesync/reconcile"
)

// State is a point in a snapshot between batches, with what a Reader has
// proven up to there: the file it belongs to, the offset and index of the
// next batch, the running count, aggregate and last key, and the chain
// digest. An importer persists it with each batch it stores (MarshalBinary
// gives 161 bytes) and passes it to Resume after a restart. A State is a
// plain value, safe to copy; the zero State belongs to no file.
type State struct {
	file    digest // SHA-256 of the header bytes
	offset  int64
	batches uint64
	agg     reconcile.Aggregate
	last    reconcile.Key
	chain   digest
}

// Offset returns where the next frame starts, from the start of the
// snapshot; with Header().Size it measures progress.
func (s State) Offset() int64 { return s.offset }

// Batches returns the number of batches read: the index of the next.
func (s State) Batches() int { return int(s.batches) }

// Count returns the number of messages read.
func (s State) Count() uint64 { return s.agg.Count }

// The encoding of a State: version, file, offset, batches, count, sum,
// last key, chain digest.
const (
	stateVersion = 1
	stateSize    = 1 + 32 + 8 + 8 + 8 + 32 + reconcile.KeySize + 32
	// minHeader is the smallest header: one-byte topics.
	minHeader = headerFixed + 2
)

// AppendBinary appends the encoding of s to b.
func (s State) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateVersion)
	b = append(b, s.file[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(s.offset))
	b = binary.BigEndian.AppendUint64(b, s.batches)
	b = binary.BigEndian.AppendUint64(b, s.agg.Count)
	b = append(b, s.agg.Sum.Bytes()...)
	b = append(b, s.last.Bytes()...)
	return append(b, s.chain[:]...), nil
}

// MarshalBinary returns the encoding of s.
func (s State) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, stateSize))
}

// UnmarshalBinary decodes the output of MarshalBinary. It is strict: the
// exact length, a known version, and fields that agree with each other,
// so only the encoding of a State a Reader could have returned passes; s
// is left unchanged on error. Resume then checks it against the file.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) != stateSize {
		return fmt.Errorf("%w: state of %d bytes, want %d", ErrCorrupt, len(b), stateSize)
	}
	if b[0] != stateVersion {
		return fmt.Errorf("%w: state version %d", ErrFormat, b[0])
	}
	var t State
	copy(t.file[:], b[1:33])
	off := binary.BigEndian.Uint64(b[33:])
	t.batches = binary.BigEndian.Uint64(b[41:])
	t.agg.Count = binary.BigEndian.Uint64(b[49:])
	t.agg.Sum = reconcile.SumFromBytes(b[57:89])
	t.last, _ = reconcile.KeyFromBytes(b[89:129])
	copy(t.chain[:], b[129:161])
	switch {
	case off < minHeader || off > math.MaxInt64:
		return fmt.Errorf("%w: state offset %d", ErrCorrupt, off)
	case t.batches > (off-minHeader)/(frameHeadSize+1):
		// Every batch takes a head and at least one payload byte.
		return fmt.Errorf("%w: state: %d batches before offset %d", ErrCorrupt, t.batches, off)
	case t.batches > t.agg.Count || (t.batches == 0) != (t.agg.Count == 0):
		return fmt.Errorf("%w: state: %d messages in %d batches", ErrCorrupt, t.agg.Count, t.batches)
	case t.agg.Count == 0 && (t.agg.Sum != reconcile.Sum{} || t.last != reconcile.Key{}):
		return fmt.Errorf("%w: state: a sum or key before any message", ErrCorrupt)
	case t.agg.Count > 0 && !validTS(t.last.TS):
		return fmt.Errorf("%w: state: last key %v", ErrCorrupt, t.last)
	}
	t.offset = int64(off)
	*s = t
	return nil
}
