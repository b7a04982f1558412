package snapshot

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/storesync/storesync/reconcile"
)

// Batch is one batch of a snapshot, verified.
type Batch struct {
	// Index is the batch's position in the file, from 0.
	Index int
	// Offset is where the batch's frame starts, from the start of the
	// snapshot; Next is where the frame after it starts.
	Offset, Next int64
	// Size is the batch's uncompressed size.
	Size int
	// Messages are the batch's messages in key order. The caller owns
	// them: the Reader never touches them again. Payloads and metas
	// alias one buffer per batch, each capped at its length (nil when
	// empty), so keeping one keeps the batch's buffer: copy what is kept
	// long. The topics are the header's strings.
	Messages []reconcile.Message
	// Keys are the messages' keys, Keys[i] that of Messages[i], each
	// computed from the message's content.
	Keys []reconcile.Key
}

// Reader reads and verifies a snapshot batch by batch. Nothing it returns
// is trusted to the file: every message is decoded, checked against the
// header's scope, validated, hashed from its content and checked for key
// order, and io.EOF comes only once the trailer proves that the batches
// are all there and add up to the header's count and aggregate. A Reader
// is not safe for concurrent use.
type Reader struct {
	r          io.ReadSeeker
	cfg        config
	base       int64 // r's offset at NewReader: where the snapshot starts
	hdr        Header
	hdrLen     int64
	batchLimit int
	id         digest // SHA-256 of the header bytes: the file in a State
	seed       digest // the chain's start: SHA-256 of the header's static part
	dec        *zstd.Decoder

	st   State
	pos  int64             // r's offset from base, or -1 when unknown
	head [trailerSize]byte // a frame head or the trailer, the longer
	comp []byte            // compressed payload, reused
	// scratch holds a batch that Verify does not return, reused.
	scratch struct {
		raw  []byte
		msgs []reconcile.Message
		keys []reconcile.Key
	}

	err    error // sticky until Resume
	done   bool
	closed bool
}

// NewReader reads and checks the header at r's current offset: magic and
// version (ErrFormat), checksum (ErrCorrupt), the writer's batch limit
// against ours (ErrTooLarge), and the file's length against the header's
// (ErrTruncated for a partial file). Options: WithMaxBatchSize,
// WithMaxMessageSize. The Reader moves r's offset as it pleases until
// Close, which releases its decompressor but does not close r.
func NewReader(r io.ReadSeeker, opts ...Option) (*Reader, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	base, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("snapshot: seek: %w", err)
	}
	hdr, limit, raw, err := readHeader(r)
	if err != nil {
		return nil, err
	}
	if limit > cfg.maxBatch {
		return nil, fmt.Errorf("%w: the file's batches go up to %d bytes, this reader's limit is %d (WithMaxBatchSize)",
			ErrTooLarge, limit, cfg.maxBatch)
	}
	// A partial download is the common damage: catch it before reading
	// any batch.
	end, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("snapshot: seek: %w", err)
	}
	switch size := end - base; {
	case size < hdr.Size:
		return nil, fmt.Errorf("%w: %d of %d bytes", ErrTruncated, size, hdr.Size)
	case size > hdr.Size:
		return nil, fmt.Errorf("%w: %d bytes after the end of the snapshot", ErrCorrupt, size-hdr.Size)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
		// Bounded whatever a frame declares: output never beyond the
		// buffer sized from the batch's checked length, a window never
		// beyond the batch limit.
		zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxMemory(uint64(cfg.maxBatch)),
		zstd.WithDecoderMaxWindow(uint64(max(cfg.maxBatch, zstd.MinWindowSize))))
	if err != nil {
		return nil, fmt.Errorf("snapshot: zstd: %w", err)
	}
	sr := &Reader{
		r:          r,
		cfg:        cfg,
		base:       base,
		hdr:        hdr,
		hdrLen:     int64(len(raw)),
		batchLimit: limit,
		id:         sha256.Sum256(raw),
		seed:       sha256.Sum256(raw[:staticSize(hdr.Scope)]),
		dec:        dec,
		pos:        -1,
	}
	sr.st = State{file: sr.id, offset: sr.hdrLen, chain: sr.seed}
	return sr, nil
}

// Header returns the header as the file states it. Its claims (count,
// aggregate, key range) are proven only when Next returns io.EOF.
func (r *Reader) Header() Header { return r.hdr }

// State returns the point after the last batch Next returned, to persist
// together with that batch's messages and pass to Resume later. After
// io.EOF it still points at the trailer, so that a resumed read checks
// the trailer again before it too returns io.EOF.
func (r *Reader) State() State { return r.st }

// Resume continues reading from st, a State of this file (ErrWrongFile
// otherwise), with the same checks as a read that never stopped: st
// carries the running count, aggregate, last key and chain digest. It
// clears an earlier error, so it also retries a batch after a failed
// read.
func (r *Reader) Resume(st State) error {
	if r.closed {
		return ErrClosed
	}
	if st.file != r.id {
		return fmt.Errorf("%w: it was taken from another file", ErrWrongFile)
	}
	if err := r.fits(&st); err != nil {
		return fmt.Errorf("%w: %w", ErrWrongFile, err)
	}
	r.st, r.err, r.done = st, nil, false
	return nil
}

// fits checks a state against the header; UnmarshalBinary has checked it
// against itself.
func (r *Reader) fits(st *State) error {
	switch {
	case st.offset < r.hdrLen || st.offset > r.hdr.Size-trailerSize:
		return fmt.Errorf("offset %d outside the batches", st.offset)
	case st.batches == 0 && (st.offset != r.hdrLen || st.chain != r.seed || st.agg.Count != 0):
		return errors.New("no batch read, yet not at the first")
	case st.batches > uint64(st.offset-r.hdrLen)/(frameHeadSize+1):
		return fmt.Errorf("%d batches cannot fit before offset %d", st.batches, st.offset)
	case st.agg.Count > 0 && (st.agg.Count-1)/MaxBatchMessages >= st.batches:
		return fmt.Errorf("%d messages cannot fit in %d batches", st.agg.Count, st.batches)
	case st.agg.Count > r.hdr.Count:
		return fmt.Errorf("%d messages read, the header has %d", st.agg.Count, r.hdr.Count)
	case st.agg.Count > 0 && (st.last.Less(r.hdr.First) || r.hdr.Last.Less(st.last)):
		return fmt.Errorf("last key %v outside the header's range", st.last)
	}
	return nil
}

// Next returns the next batch, verified, or io.EOF once the trailer has
// proven the file complete and equal to its header. An error other than
// io.EOF wraps ErrTruncated, ErrCorrupt, ErrMismatch or ErrTooLarge (or
// the reader's own I/O error), names the batch and offset, and is
// returned again by every later call until Resume.
func (r *Reader) Next() (Batch, error) { return r.step(true) }

// Verify reads and verifies the next batch exactly as Next does, with
// the same errors and the same State after it, but returns the batch
// without its Messages and Keys: for a pass that only checks a file, it
// reuses its buffers from batch to batch instead of allocating each
// batch's. Next and Verify may be mixed.
func (r *Reader) Verify() (Batch, error) { return r.step(false) }

// step is Next, keeping the batch's messages if keep.
func (r *Reader) step(keep bool) (Batch, error) {
	switch {
	case r.closed:
		return Batch{}, ErrClosed
	case r.err != nil:
		return Batch{}, r.err
	case r.done:
		return Batch{}, io.EOF
	}
	b, err := r.next(keep)
	switch {
	case err == io.EOF:
		r.done = true
	case err != nil:
		r.err = err
	}
	return b, err
}

// Close releases the decompressor; it does not close the underlying
// reader. Later calls return ErrClosed.
func (r *Reader) Close() error {
	if !r.closed {
		r.closed = true
		r.dec.Close()
	}
	return nil
}

func (r *Reader) next(keep bool) (Batch, error) {
	off := r.st.offset
	if r.pos != off {
		if _, err := r.r.Seek(r.base+off, io.SeekStart); err != nil {
			r.pos = -1
			return Batch{}, r.fail(off, is(err), "seek")
		}
		r.pos = off
	}
	// Every frame is at least a batch head long: the trailer is longer.
	if err := r.read(r.head[:frameHeadSize]); err != nil {
		return Batch{}, r.fail(off, is(err), "frame head")
	}
	switch r.head[0] {
	case kindBatch:
		return r.batch(off, keep)
	case kindEnd:
		return Batch{}, r.end(off)
	}
	return Batch{}, r.fail(off, is(ErrCorrupt), "unknown frame kind %#02x", r.head[0])
}

// read fills p from the snapshot; a short read means the file ends early.
func (r *Reader) read(p []byte) error {
	n, err := io.ReadFull(r.r, p)
	r.pos += int64(n)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}

// fail returns an error matching errs (sentinels, or an I/O error) that
// names the batch being read and its offset.
func (r *Reader) fail(off int64, errs []error, format string, args ...any) error {
	return &readError{is: errs, where: fmt.Sprintf("batch %d at offset %d", r.st.batches, off), msg: fmt.Sprintf(format, args...)}
}
