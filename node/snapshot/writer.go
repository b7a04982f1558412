package snapshot

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/storesync/storesync/reconcile"
)

// Writer writes the snapshot of one scope: the caller adds the scope's
// messages in strictly increasing key order, as it iterates a live
// store, and Close fills in the header. A Writer is not safe for
// concurrent use.
type Writer struct {
	w    io.WriteSeeker
	cfg  config
	base int64 // w's offset at NewWriter: where the snapshot starts
	hdr  Header
	enc  *zstd.Encoder

	chain   digest
	batches uint64
	off     int64  // bytes written, from base
	raw     []byte // the open batch's content
	n       int    // messages in the open batch
	prevTS  uint64 // timestamp of the open batch's last message
	buf     []byte // frame head and compressed payload, reused
	skip    int    // batches still to store raw without trying zstd

	err    error // a failed write or seek: the file is unusable
	closed bool
}

// NewWriter writes a provisional header for scope sc at w's current
// offset and returns a Writer that appends batches after it. Until Close
// the header records no size, so a reader reports the file as
// ErrTruncated. The Writer never closes w. A scope with an empty topic is
// ErrInvalid, one with a topic over 65535 bytes ErrTooLarge. Options:
// WithMaxBatchSize, WithMaxMessageSize, WithCompressionLevel,
// WithCreated.
func NewWriter(w io.WriteSeeker, sc reconcile.Scope, opts ...Option) (*Writer, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if sc.PubsubTopic == "" || sc.ContentTopic == "" {
		return nil, fmt.Errorf("%w: scope %q has an empty topic", ErrInvalid, sc)
	}
	if len(sc.PubsubTopic) > math.MaxUint16 || len(sc.ContentTopic) > math.MaxUint16 {
		return nil, fmt.Errorf("%w: topic longer than %d bytes", ErrTooLarge, math.MaxUint16)
	}
	created := cfg.created
	if created.IsZero() {
		created = time.Now()
	}
	base, err := w.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("snapshot: seek: %w", err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(cfg.level), zstd.WithEncoderConcurrency(1),
		// Every frame declares its size as its window, so a reader's
		// window limit is its batch limit. The chain digest covers the
		// payload already; a zstd checksum would be a third check.
		zstd.WithSingleSegment(true), zstd.WithEncoderCRC(false),
		// No match reaches beyond a batch: a larger window is only memory.
		zstd.WithWindowSize(windowFor(cfg.maxBatch)))
	if err != nil {
		return nil, fmt.Errorf("snapshot: zstd: %w", err)
	}
	sw := &Writer{
		w:    w,
		cfg:  cfg,
		base: base,
		// Rounded to what the header can hold, so that Close returns
		// what a reader will see.
		hdr: Header{Scope: sc, Created: time.Unix(0, created.UnixNano()).UTC()},
		enc: enc,
	}
	b := appendHeader(nil, &sw.hdr, cfg.maxBatch)
	sw.chain = sha256.Sum256(b[:staticSize(sc)])
	if err := sw.write(b); err != nil {
		enc.Close()
		return nil, err
	}
	return sw, nil
}

// Add appends m to the snapshot. m must be of the writer's scope
// (ErrScope), pass Validate (ErrInvalid), be at most the max message size
// (ErrTooLarge) and have a key strictly above the previous message's
// (ErrOrder); a message refused for one of these leaves nothing in the
// file and the Writer usable. Add copies what it keeps of m. A failed
// write makes this and every later call fail.
func (w *Writer) Add(m reconcile.Message) error { return w.add(&m, nil) }

// AddKeyed is Add for a message whose key the caller has computed
// already, as a store does to check a stored message against the key it
// is stored under: k must be m.Key(). It saves Add's hashing of m, the
// largest part of its cost. A wrong k is not detected here; it makes a
// file that every Reader refuses (ErrCorrupt or ErrMismatch), since a
// Reader recomputes every hash.
func (w *Writer) AddKeyed(m reconcile.Message, k reconcile.Key) error { return w.add(&m, &k) }

// add is Add, with m's key when the caller knows it.
func (w *Writer) add(m *reconcile.Message, key *reconcile.Key) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if sc := m.Scope(); sc != w.hdr.Scope {
		return fmt.Errorf("%w: %q, the snapshot's is %q", ErrScope, sc, w.hdr.Scope)
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if n := messageSize(m); n > w.cfg.maxMessage {
		return fmt.Errorf("%w: message of %d bytes, limit %d", ErrTooLarge, n, w.cfg.maxMessage)
	}
	var k reconcile.Key
	if key != nil {
		k = *key
	} else {
		k = m.Key()
	}
	if w.hdr.Count > 0 && !w.hdr.Last.Less(k) {
		return fmt.Errorf("%w: key %v after %v", ErrOrder, k, w.hdr.Last)
	}
	delta := k.TS
	if w.n > 0 {
		delta -= w.prevTS
		if len(w.raw)+entrySize(delta, m) > w.cfg.maxBatch || w.n == MaxBatchMessages {
			if err := w.flush(); err != nil {
				return err
			}
			delta = k.TS
		}
	}
	if w.raw == nil {
		w.raw = make([]byte, 0, w.cfg.maxBatch)
	}
	w.raw = appendMessage(w.raw, delta, m)
	w.n++
	w.prevTS = k.TS
	if w.hdr.Count == 0 {
		w.hdr.First = k
	}
	w.hdr.Last = k
	w.hdr.Count++
	w.hdr.Agg = w.hdr.Agg.AddHash(&k.Hash)
	return nil
}

// Compression is adaptive, since compressing what does not shrink
// (encrypted payloads) is most of an export's cost for nothing: a batch
// that zstd shrinks by less than 1/minSaving makes the next skipBatches
// batches go out as raw blocks (appendRawFrame) untried; the batch after
// them tries again, so a scope whose content changes is compressed again.
const (
	minSaving   = 16
	skipBatches = 15
)

// flush compresses the open batch, or stores it raw (see minSaving),
// and writes its frame.
func (w *Writer) flush() error {
	buf := w.buf[:0]
	if cap(buf) < frameHeadSize {
		buf = make([]byte, 0, frameHeadSize+compressBound(w.cfg.maxBatch))
	}
	if w.skip > 0 {
		w.skip--
		buf = appendRawFrame(buf[:frameHeadSize], w.raw)
	} else {
		buf = w.enc.EncodeAll(w.raw, buf[:frameHeadSize])
		if len(buf)-frameHeadSize > len(w.raw)-len(w.raw)/minSaving {
			w.skip = skipBatches
		}
	}
	comp := len(buf) - frameHeadSize
	if comp > compressBound(len(w.raw)) {
		// A reader would refuse the frame; better to fail here.
		w.err = fmt.Errorf("snapshot: batch %d: zstd gave %d bytes for %d", w.batches, comp, len(w.raw))
		return w.err
	}
	f := frameHead{count: uint32(w.n), raw: uint32(len(w.raw)), comp: uint32(comp)}
	f.put(buf)
	f.chain = link(&w.chain, buf, buf[frameHeadSize:])
	f.put(buf)
	w.buf = buf
	if err := w.write(buf); err != nil {
		return err
	}
	w.chain = f.chain
	w.batches++
	w.raw = w.raw[:0]
	w.n = 0
	return nil
}

// write writes b at the end of the snapshot.
func (w *Writer) write(b []byte) error {
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("snapshot: write: %w", err)
		return w.err
	}
	w.off += int64(len(b))
	return nil
}

// Close writes the last batch and the trailer, seeks back to write the
// final header, and leaves w at the end of the snapshot. It returns the
// header a reader will see. It does not close w; it releases the
// compressor, so every later call returns ErrClosed.
func (w *Writer) Close() (Header, error) {
	if w.closed {
		return Header{}, ErrClosed
	}
	w.closed = true
	defer w.enc.Close()
	if w.err != nil {
		return Header{}, w.err
	}
	if w.n > 0 {
		if err := w.flush(); err != nil {
			return Header{}, err
		}
	}
	var t [trailerSize]byte
	(&trailer{batches: w.batches, count: w.hdr.Count, chain: w.chain}).put(t[:])
	if err := w.write(t[:]); err != nil {
		return Header{}, err
	}
	w.hdr.Size = w.off
	if _, err := w.w.Seek(w.base, io.SeekStart); err != nil {
		return Header{}, fmt.Errorf("snapshot: seek to header: %w", err)
	}
	if _, err := w.w.Write(appendHeader(nil, &w.hdr, w.cfg.maxBatch)); err != nil {
		return Header{}, fmt.Errorf("snapshot: write header: %w", err)
	}
	if _, err := w.w.Seek(w.base+w.off, io.SeekStart); err != nil {
		return Header{}, fmt.Errorf("snapshot: seek to end: %w", err)
	}
	return w.hdr, nil
}

// windowFor returns the smallest zstd window that holds a batch of n
// bytes: a power of two, at least zstd.MinWindowSize.
func windowFor(n int) int {
	w := zstd.MinWindowSize
	for w < n {
		w <<= 1
	}
	return w
}
