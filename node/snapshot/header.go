package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// Header describes a snapshot: what the file claims, and what a Reader
// proves before it returns io.EOF.
type Header struct {
	// Scope is the scope of every message in the file.
	Scope reconcile.Scope
	// Count is the number of messages; it equals Agg.Count.
	Count uint64
	// Agg is the count and sum of the message hashes: the aggregate a
	// scope's tree holds at its root.
	Agg reconcile.Aggregate
	// First and Last are the smallest and largest keys, both zero when
	// the snapshot is empty.
	First, Last reconcile.Key
	// Created is when the writer started, in UTC.
	Created time.Time
	// Size is the length of the whole snapshot in bytes.
	Size int64
}

// Root returns the scope's root fingerprint: the value to compare with a
// trusted root (a peer's, the publisher's) before relying on the file.
func (h Header) Root() reconcile.Fingerprint { return h.Agg.Fingerprint() }

// The header layout (doc.go has the full description).
const (
	magic         = "SSYNSNAP"
	formatVersion = 1

	prefixSize = 8 + 2 + 2 + 2 + 2 // magic, version, flags, topic lengths
	staticTail = 8 + 4             // created, batch limit
	closeTail  = 8 + 8 + 32 + 2*reconcile.KeySize
	crcSize    = 4
	// headerFixed is the header's size less its topics.
	headerFixed = prefixSize + staticTail + closeTail + crcSize
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// headerSize returns the encoded size of a header of scope sc.
func headerSize(sc reconcile.Scope) int {
	return headerFixed + len(sc.PubsubTopic) + len(sc.ContentTopic)
}

// staticSize returns the length of the header's static part: the bytes
// written once at NewWriter that seed the batch chain.
func staticSize(sc reconcile.Scope) int {
	return prefixSize + len(sc.PubsubTopic) + len(sc.ContentTopic) + staticTail
}

// appendHeader appends the encoding of h, whose batches are at most
// batchLimit bytes raw, and its CRC.
func appendHeader(b []byte, h *Header, batchLimit int) []byte {
	start := len(b)
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, formatVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Scope.PubsubTopic)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Scope.ContentTopic)))
	b = append(b, h.Scope.PubsubTopic...)
	b = append(b, h.Scope.ContentTopic...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Created.UnixNano()))
	b = binary.BigEndian.AppendUint32(b, uint32(batchLimit))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Size))
	b = binary.BigEndian.AppendUint64(b, h.Count)
	b = append(b, h.Agg.Sum.Bytes()...)
	b = append(b, h.First.Bytes()...)
	b = append(b, h.Last.Bytes()...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// readHeader reads and checks a header. It returns the header, the batch
// limit its writer used and the header's bytes. A header from a writer
// that never reached Close has Size 0 and is reported as ErrTruncated.
func readHeader(r io.Reader) (h Header, batchLimit int, raw []byte, err error) {
	pre := make([]byte, prefixSize)
	if n, err := io.ReadFull(r, pre); err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return h, 0, nil, fmt.Errorf("snapshot: read header: %w", err)
		}
		// A prefix of the magic is a snapshot cut short; anything else
		// is not a snapshot at all.
		if m := min(n, len(magic)); bytes.Equal(pre[:m], []byte(magic[:m])) {
			return h, 0, nil, fmt.Errorf("%w: header: %d bytes", ErrTruncated, n)
		}
		return h, 0, nil, fmt.Errorf("%w: %d bytes", ErrFormat, n)
	}
	if string(pre[:8]) != magic {
		return h, 0, nil, fmt.Errorf("%w: bad magic %q", ErrFormat, pre[:8])
	}
	if v := binary.BigEndian.Uint16(pre[8:]); v != formatVersion {
		return h, 0, nil, fmt.Errorf("%w: format version %d, this reader knows %d", ErrFormat, v, formatVersion)
	}
	if f := binary.BigEndian.Uint16(pre[10:]); f != 0 {
		return h, 0, nil, fmt.Errorf("%w: unknown flags %#04x", ErrFormat, f)
	}
	np, nc := int(binary.BigEndian.Uint16(pre[12:])), int(binary.BigEndian.Uint16(pre[14:]))
	raw = make([]byte, headerFixed+np+nc)
	copy(raw, pre)
	if _, err := io.ReadFull(r, raw[prefixSize:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return h, 0, nil, fmt.Errorf("%w: header", ErrTruncated)
		}
		return h, 0, nil, fmt.Errorf("snapshot: read header: %w", err)
	}
	body := raw[:len(raw)-crcSize]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(raw[len(body):]) {
		return h, 0, nil, fmt.Errorf("%w: header checksum", ErrCorrupt)
	}
	p := body[prefixSize:]
	h.Scope.PubsubTopic = string(p[:np])
	h.Scope.ContentTopic = string(p[np : np+nc])
	p = p[np+nc:]
	h.Created = time.Unix(0, int64(binary.BigEndian.Uint64(p))).UTC()
	batchLimit = int(binary.BigEndian.Uint32(p[8:]))
	size := binary.BigEndian.Uint64(p[12:])
	h.Count = binary.BigEndian.Uint64(p[20:])
	h.Agg = reconcile.Aggregate{Count: h.Count, Sum: reconcile.SumFromBytes(p[28:60])}
	h.First, _ = reconcile.KeyFromBytes(p[60:100])
	h.Last, _ = reconcile.KeyFromBytes(p[100:140])
	if size == 0 {
		return h, 0, nil, fmt.Errorf("%w: the writer never finished the file", ErrTruncated)
	}
	if size > math.MaxInt64 || size < uint64(len(raw)+trailerSize) {
		return h, 0, nil, fmt.Errorf("%w: header: size %d", ErrCorrupt, size)
	}
	h.Size = int64(size)
	if err := h.check(batchLimit); err != nil {
		return h, 0, nil, err
	}
	return h, batchLimit, raw, nil
}

// check reports a header that no writer could have produced; the checksum
// passed, so it was written that way.
func (h *Header) check(batchLimit int) error {
	if h.Scope.PubsubTopic == "" || h.Scope.ContentTopic == "" {
		return fmt.Errorf("%w: header: empty topic", ErrCorrupt)
	}
	if batchLimit < 1 {
		return fmt.Errorf("%w: header: batch limit %d", ErrCorrupt, batchLimit)
	}
	if h.Count == 0 {
		if h.Agg.Sum != (reconcile.Sum{}) || h.First != (reconcile.Key{}) || h.Last != (reconcile.Key{}) {
			return fmt.Errorf("%w: header: empty snapshot with a sum or key range", ErrCorrupt)
		}
		return nil
	}
	if !validTS(h.First.TS) || !validTS(h.Last.TS) || h.Last.Less(h.First) || (h.Count == 1) != (h.First == h.Last) {
		return fmt.Errorf("%w: header: key range [%v, %v] for %d messages", ErrCorrupt, h.First, h.Last, h.Count)
	}
	return nil
}

// validTS reports whether a stored message may carry timestamp ts.
func validTS(ts uint64) bool { return ts >= 1 && ts <= reconcile.MaxTimestamp }
