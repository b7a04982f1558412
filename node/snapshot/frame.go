package snapshot

import (
	"crypto/sha256"
	"encoding/binary"
)

// Frames after the header: batches, then one trailer (doc.go has the
// layout).
const (
	kindBatch = 'B'
	kindEnd   = 'E'

	// frameHeadSize is a batch frame before its payload: kind, message
	// count, raw length, compressed length, chain digest.
	frameHeadSize = 1 + 4 + 4 + 4 + sha256.Size
	// chainedHead is the part of the frame head the chain digest covers.
	chainedHead = 1 + 4 + 4 + 4
	// trailerSize is the trailer: kind, batch count, message count,
	// final chain digest.
	trailerSize = 1 + 8 + 8 + sha256.Size

	// minMessageRaw is the smallest raw encoding of a message: three
	// one-byte varints.
	minMessageRaw = 3
)

// digest is a link of the batch chain.
type digest [sha256.Size]byte

// frameHead is a batch frame's head.
type frameHead struct {
	count, raw, comp uint32
	chain            digest
}

// put encodes f into b[:frameHeadSize].
func (f *frameHead) put(b []byte) {
	b[0] = kindBatch
	binary.BigEndian.PutUint32(b[1:], f.count)
	binary.BigEndian.PutUint32(b[5:], f.raw)
	binary.BigEndian.PutUint32(b[9:], f.comp)
	copy(b[chainedHead:], f.chain[:])
}

// parseFrameHead decodes b[:frameHeadSize]; the caller has checked the kind.
func parseFrameHead(b []byte) frameHead {
	f := frameHead{
		count: binary.BigEndian.Uint32(b[1:]),
		raw:   binary.BigEndian.Uint32(b[5:]),
		comp:  binary.BigEndian.Uint32(b[9:]),
	}
	copy(f.chain[:], b[chainedHead:frameHeadSize])
	return f
}

// link returns the chain digest of a batch: SHA-256 over the previous
// digest, the batch's frame head up to the digest, and its payload. The
// first batch links to the digest of the header's static part.
func link(prev *digest, head, payload []byte) digest {
	d := sha256.New()
	d.Write(prev[:])
	d.Write(head[:chainedHead])
	d.Write(payload)
	var out digest
	d.Sum(out[:0])
	return out
}

// compressBound is the largest zstd payload a batch of n raw bytes may
// have: zstd stores incompressible blocks raw at 3 bytes per 128 KiB
// block plus a frame header of at most 18 bytes, well inside this. It
// lets a reader refuse a payload length before reading the payload.
func compressBound(n int) int { return n + n>>8 + 64 }

// trailer ends a snapshot.
type trailer struct {
	batches, count uint64
	chain          digest
}

// put encodes t into b[:trailerSize].
func (t *trailer) put(b []byte) {
	b[0] = kindEnd
	binary.BigEndian.PutUint64(b[1:], t.batches)
	binary.BigEndian.PutUint64(b[9:], t.count)
	copy(b[17:], t.chain[:])
}

// parseTrailer decodes b[:trailerSize]; the caller has checked the kind.
func parseTrailer(b []byte) trailer {
	t := trailer{batches: binary.BigEndian.Uint64(b[1:]), count: binary.BigEndian.Uint64(b[9:])}
	copy(t.chain[:], b[17:trailerSize])
	return t
}
