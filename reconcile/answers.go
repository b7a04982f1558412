package reconcile

import (
	"encoding/binary"
	"fmt"
)

// answer is one entry of a WANT's answer: the key whose short ID was
// asked for, less what the short ID already says (the timestamp's window
// and the hash's first bytes, see keyID); held false says the responder
// holds no key with that ID.
type answer struct {
	held bool
	low  uint64 // the timestamp below its window
	tail [HashSize - idHashBytes]byte
}

// answerOf returns the answer entry of a key.
func answerOf(k Key) answer {
	a := answer{held: true, low: k.TS & (1<<idWindowBits - 1)}
	copy(a.tail[:], k.Hash[idHashBytes:])
	return a
}

// key returns the key an answer stands for, given the short ID asked.
func (a answer) key(id ShortID) Key {
	k := Key{TS: uint64(id)>>idWindowBits<<idWindowBits | a.low}
	for i := range idHashBytes {
		k.Hash[i] = byte(uint64(id) >> (8 * (idHashBytes - 1 - i)))
	}
	copy(k.Hash[idHashBytes:], a.tail[:])
	return k
}

// appendAnswers encodes the answer entries: per entry a uvarint, 0 for
// not held or else the timestamp below its window plus one, then the
// hash past its first bytes. An answer is about the size of a hash: the
// short ID asked for carries the rest of the key.
func appendAnswers(b []byte, as []answer) []byte {
	for _, a := range as {
		if !a.held {
			b = append(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, a.low+1)
		b = append(b, a.tail[:]...)
	}
	return b
}

// parseAnswers decodes at most max answer entries, accepting only what
// appendAnswers writes.
func parseAnswers(b []byte, max int) ([]answer, error) {
	var out []answer
	for len(b) > 0 {
		if len(out) == max {
			return nil, fmt.Errorf("%w: more than %d answers", ErrTooManyKeys, max)
		}
		v, n := readUvarint(b)
		if n == 0 || v > 1<<idWindowBits {
			return nil, badFrame("answer %d", len(out))
		}
		b = b[n:]
		var a answer
		if v != 0 {
			a.held, a.low = true, v-1
			if len(b) < len(a.tail) {
				return nil, badFrame("answer %d truncated", len(out))
			}
			copy(a.tail[:], b)
			b = b[len(a.tail):]
		}
		out = append(out, a)
	}
	return out, nil
}
