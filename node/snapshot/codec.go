package snapshot

import (
	"encoding/binary"
	"errors"
	"math/bits"

	"github.com/storesync/storesync/reconcile"
)

// A batch's raw content is its messages one after another, each as
//
//	uvarint timestamp delta | uvarint payload length | payload | uvarint meta length | meta
//
// The topics are the header's and the hash is recomputed, so neither is
// stored: a file cannot hold a message of another scope, nor claim a hash.

// appendMessage appends m's entry, its timestamp given as the delta from
// the previous message of the batch (or from zero for the first).
func appendMessage(b []byte, delta uint64, m *reconcile.Message) []byte {
	b = binary.AppendUvarint(b, delta)
	b = binary.AppendUvarint(b, uint64(len(m.Payload)))
	b = append(b, m.Payload...)
	b = binary.AppendUvarint(b, uint64(len(m.Meta)))
	return append(b, m.Meta...)
}

// entrySize is the length appendMessage adds.
func entrySize(delta uint64, m *reconcile.Message) int {
	return uvarintLen(delta) + uvarintLen(uint64(len(m.Payload))) + len(m.Payload) +
		uvarintLen(uint64(len(m.Meta))) + len(m.Meta)
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

var (
	errVarint = errors.New("bad varint")
	errShort  = errors.New("entry runs past the batch")
)

// uvarint decodes the varint at b[p:]. Only the shortest encoding is
// accepted, so that every message has exactly one encoding.
func uvarint(b []byte, p int) (uint64, int, error) {
	v, n := binary.Uvarint(b[p:])
	switch {
	case n == 0:
		return 0, p, errShort
	case n < 0 || (n > 1 && b[p+n-1] == 0):
		return 0, p, errVarint
	}
	return v, p + n, nil
}

// field decodes a length-prefixed field at b[p:]. The result aliases b and
// has its capacity cut to its length, so a caller's append copies rather
// than overwrites the next message; an empty field is nil.
func field(b []byte, p int) ([]byte, int, error) {
	n, p, err := uvarint(b, p)
	if err != nil {
		return nil, p, err
	}
	if n > uint64(len(b)-p) {
		return nil, p, errShort
	}
	if n == 0 {
		return nil, p, nil
	}
	end := p + int(n)
	return b[p:end:end], end, nil
}

// messageSize is the size of m's pb.Message encoding, the measure of the
// maximum message size everywhere in storesync.
func messageSize(m *reconcile.Message) int { return m.ToPB().Size() }
