package snapshot

import (
	"fmt"
	"io"
	"runtime"

	"github.com/storesync/storesync/reconcile"
)

// batch reads and verifies the batch whose head is in r.head, and
// returns it with its messages if keep (see content). The state advances
// only once the whole batch has passed, so that after a failure State
// still points at the failed batch.
func (r *Reader) batch(off int64, keep bool) (Batch, error) {
	f := parseFrameHead(r.head[:])
	// Sizes are checked before anything is allocated from them.
	switch {
	case f.count == 0:
		return Batch{}, r.fail(off, is(ErrCorrupt), "no messages")
	case f.count > MaxBatchMessages:
		return Batch{}, r.fail(off, is(ErrTooLarge), "%d messages, at most %d", f.count, MaxBatchMessages)
	case int64(f.raw) > int64(r.batchLimit):
		return Batch{}, r.fail(off, is(ErrTooLarge), "%d bytes, the file's limit is %d", f.raw, r.batchLimit)
	case int64(f.raw) < int64(f.count)*minMessageRaw:
		return Batch{}, r.fail(off, is(ErrCorrupt), "%d bytes cannot hold %d messages", f.raw, f.count)
	case f.comp == 0 || int64(f.comp) > int64(compressBound(int(f.raw))):
		return Batch{}, r.fail(off, is(ErrCorrupt), "%d bytes compressed for %d raw", f.comp, f.raw)
	case off+frameHeadSize+int64(f.comp)+trailerSize > r.hdr.Size:
		return Batch{}, r.fail(off, is(ErrCorrupt), "%d bytes run past the trailer", f.comp)
	}
	if cap(r.comp) < int(f.comp) {
		r.comp = make([]byte, compressBound(r.batchLimit))
	}
	comp := r.comp[:f.comp]
	if err := r.read(comp); err != nil {
		return Batch{}, r.fail(off, is(err), "payload")
	}
	// The chain digest of a large batch is computed on a second
	// goroutine while the batch decodes; a digest that does not match
	// fails the batch whatever its content, as if checked first.
	var chain digest
	if len(comp) >= minParallelLink && runtime.GOMAXPROCS(0) > 1 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			chain = link(&r.st.chain, r.head[:], comp)
		}()
		b, st, err := r.content(off, f, comp, keep)
		<-done
		if chain != f.chain {
			return Batch{}, r.fail(off, is(ErrCorrupt), errChain)
		}
		return r.advance(b, st, err)
	}
	if link(&r.st.chain, r.head[:], comp) != f.chain {
		return Batch{}, r.fail(off, is(ErrCorrupt), errChain)
	}
	return r.advance(r.content(off, f, comp, keep))
}

// minParallelLink is the smallest payload whose chain digest is worth a
// goroutine of its own.
const minParallelLink = 64 << 10

const errChain = "chain digest mismatch: damaged, out of place or from another file"

// advance makes the state after a batch that passed the Reader's, or
// returns the batch's error.
func (r *Reader) advance(b Batch, st State, err error) (Batch, error) {
	if err != nil {
		return Batch{}, err
	}
	r.st = st
	return b, nil
}

// content decompresses and decodes the batch at off with head f and
// payload comp, verifying every message, and returns it with the state
// after it. With keep, the batch's content, messages and keys are new,
// for the caller; without, they are the Reader's scratch buffers and the
// batch is returned without them.
func (r *Reader) content(off int64, f frameHead, comp []byte, keep bool) (Batch, State, error) {
	var raw []byte
	var msgs []reconcile.Message
	var keys []reconcile.Key
	if keep {
		raw = make([]byte, 0, f.raw)
		msgs, keys = make([]reconcile.Message, f.count), make([]reconcile.Key, f.count)
	} else {
		if cap(r.scratch.raw) < int(f.raw) {
			r.scratch.raw = make([]byte, 0, r.batchLimit)
		}
		if cap(r.scratch.msgs) < int(f.count) {
			r.scratch.msgs = make([]reconcile.Message, f.count)
			r.scratch.keys = make([]reconcile.Key, f.count)
		}
		// Capped at the frame's size, as a new buffer would be, so that
		// the decoder's output stays bounded by it.
		raw = r.scratch.raw[:0:f.raw]
		msgs, keys = r.scratch.msgs[:f.count], r.scratch.keys[:f.count]
	}
	raw, err := r.dec.DecodeAll(comp, raw)
	if err != nil {
		return Batch{}, State{}, r.fail(off, is(ErrCorrupt), "zstd: %v", err)
	}
	if len(raw) != int(f.raw) {
		return Batch{}, State{}, r.fail(off, is(ErrCorrupt), "%d bytes decompressed, the frame says %d", len(raw), f.raw)
	}
	st := r.st
	if err := r.decode(off, raw, msgs, keys, &st); err != nil {
		return Batch{}, State{}, err
	}
	next := off + frameHeadSize + int64(f.comp)
	b := Batch{Index: int(r.st.batches), Offset: off, Next: next, Size: len(raw)}
	if keep {
		b.Messages, b.Keys = msgs, keys
	}
	st.offset, st.batches, st.chain = next, st.batches+1, f.chain
	return b, st, nil
}

// decode fills msgs, and keys with their keys, from the raw content of
// the batch at off and verifies each message, advancing st's aggregate
// and last key.
func (r *Reader) decode(off int64, raw []byte, msgs []reconcile.Message, keys []reconcile.Key, st *State) error {
	hdr := &r.hdr
	p := 0
	var ts uint64
	for i := range msgs {
		delta, q, err := uvarint(raw, p)
		if err != nil {
			return r.fail(off, is(ErrCorrupt), "message %d: timestamp: %v", i, err)
		}
		if i == 0 {
			ts = delta
		} else if delta > reconcile.MaxTimestamp-ts {
			return r.fail(off, is(ErrCorrupt, ErrInvalid), "message %d: timestamp overflows", i)
		} else {
			ts += delta
		}
		payload, q, err := field(raw, q)
		if err != nil {
			return r.fail(off, is(ErrCorrupt), "message %d: payload: %v", i, err)
		}
		meta, q, err := field(raw, q)
		if err != nil {
			return r.fail(off, is(ErrCorrupt), "message %d: meta: %v", i, err)
		}
		p = q
		m := &msgs[i]
		*m = reconcile.Message{
			// The header's strings, shared: a message has no topics of
			// its own in the file.
			PubsubTopic:  hdr.Scope.PubsubTopic,
			ContentTopic: hdr.Scope.ContentTopic,
			Payload:      payload,
			Meta:         meta,
			Timestamp:    int64(ts),
		}
		if err := m.Validate(); err != nil {
			return r.fail(off, is(ErrCorrupt, ErrInvalid, err), "message %d: %v", i, err)
		}
		if n := messageSize(m); n > r.cfg.maxMessage {
			return r.fail(off, is(ErrTooLarge), "message %d: %d bytes, limit %d", i, n, r.cfg.maxMessage)
		}
		k := m.Key() // recomputed: the file never states a hash
		switch {
		case st.agg.Count > 0 && !st.last.Less(k):
			return r.fail(off, is(ErrCorrupt, ErrOrder), "message %d: key %v after %v", i, k, st.last)
		case st.agg.Count == 0 && k != hdr.First:
			return r.fail(off, is(ErrMismatch), "message %d: first key %v, the header says %v", i, k, hdr.First)
		case hdr.Last.Less(k):
			return r.fail(off, is(ErrMismatch), "message %d: key %v above the header's last %v", i, k, hdr.Last)
		case st.agg.Count == hdr.Count:
			return r.fail(off, is(ErrMismatch), "message %d: more messages than the header's %d", i, hdr.Count)
		}
		st.agg = st.agg.AddHash(&k.Hash)
		st.last = k
		keys[i] = k
	}
	if p != len(raw) {
		return r.fail(off, is(ErrCorrupt), "%d bytes after the last message", len(raw)-p)
	}
	return nil
}

// end reads and checks the trailer whose first bytes are in r.head, then
// the totals against the header. It returns io.EOF when all agree.
func (r *Reader) end(off int64) error {
	fail := func(errs []error, format string, args ...any) error {
		return &readError{is: errs, where: fmt.Sprintf("trailer at offset %d", off), msg: fmt.Sprintf(format, args...)}
	}
	if err := r.read(r.head[frameHeadSize:trailerSize]); err != nil {
		return fail(is(err), "read")
	}
	t := parseTrailer(r.head[:])
	st := &r.st
	switch {
	case t.batches != st.batches || t.count != st.agg.Count:
		return fail(is(ErrCorrupt), "%d batches and %d messages, the file has %d and %d",
			t.batches, t.count, st.batches, st.agg.Count)
	case t.chain != st.chain:
		return fail(is(ErrCorrupt), "digest does not match the batches")
	case off+trailerSize != r.hdr.Size:
		return fail(is(ErrCorrupt), "ends at %d, the header says %d", off+trailerSize, r.hdr.Size)
	case st.agg.Count != r.hdr.Count:
		return fail(is(ErrMismatch), "%d messages, the header says %d", st.agg.Count, r.hdr.Count)
	case st.agg != r.hdr.Agg:
		return fail(is(ErrMismatch), "root %x, the header says %x", st.agg.Fingerprint(), r.hdr.Root())
	case st.agg.Count > 0 && st.last != r.hdr.Last:
		return fail(is(ErrMismatch), "last key %v, the header says %v", st.last, r.hdr.Last)
	}
	return io.EOF
}
