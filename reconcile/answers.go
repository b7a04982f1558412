package reconcile

import (
	"encoding/binary"
	"fmt"
)

// answer is one entry of a WANT's answer: the key whose short ID was
// asked for, less the short ID, which the asker knows; ts 0 says the
// responder holds no key with that ID.
type answer struct {
	ts   uint64
	tail [HashSize - 8]byte
}

// answerOf returns the answer entry of a key.
func answerOf(k Key) answer {
	a := answer{ts: k.TS}
	copy(a.tail[:], k.Hash[8:])
	return a
}

// key returns the key an answer stands for, given the short ID asked.
func (a answer) key(id ShortID) Key {
	k := Key{TS: a.ts}
	binary.LittleEndian.PutUint64(k.Hash[:8], uint64(id))
	copy(k.Hash[8:], a.tail[:])
	return k
}

// appendAnswers encodes the answer entries: per entry the timestamp as a
// uvarint and, unless it is 0, the hash's tail. An answer carries 8 bytes
// of hash fewer than a key, which pays for its timestamp: a decoded
// sketch costs about what it did when answers were bare hashes.
func appendAnswers(b []byte, as []answer) []byte {
	for _, a := range as {
		b = binary.AppendUvarint(b, a.ts)
		if a.ts != 0 {
			b = append(b, a.tail[:]...)
		}
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
		ts, n := binary.Uvarint(b)
		if n <= 0 || n != uvarintLen(ts) || ts > MaxTimestamp {
			return nil, badFrame("answer %d", len(out))
		}
		b = b[n:]
		a := answer{ts: ts}
		if ts != 0 {
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
