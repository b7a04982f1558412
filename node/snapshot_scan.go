package node

import (
	"context"

	"github.com/storesync/storesync/reconcile"
)

// scanChunk is how many records the scanning goroutine of an export
// copies before handing them over, and scanDepth how many chunks
// may wait: a few hundred KiB in flight whatever the scope's size.
const (
	scanChunk = 512
	scanDepth = 2
)

// storedChunk is a run of a scope's records in key order, copied out of
// the store but not yet decoded: the record stored under keys[i] is
// buf[ends[i-1]:ends[i]] (from 0 for the first).
type storedChunk struct {
	keys []reconcile.Key
	ends []int
	buf  []byte
}

// record returns the i-th record.
func (c *storedChunk) record(i int) []byte {
	start := 0
	if i > 0 {
		start = c.ends[i-1]
	}
	return c.buf[start:c.ends[i]]
}

// scanScope reads every record of st in key order on a goroutine of its
// own and copies it out, so that an export's reading of the store
// overlaps, on a second core, its decoding, checking, hashing and
// compressing of what was read. The channel yields chunks of at most
// scanChunk records, in key order, and is closed when the scan ends;
// wait then returns the scan's error. Cancelling ctx stops the scan. The
// caller must call wait once, which waits for the goroutine, and may
// stop reading the channel before the end only after cancelling ctx.
func (s *Store) scanScope(ctx context.Context, st *scopeState) (<-chan storedChunk, func() error) {
	out := make(chan storedChunk, scanDepth)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		send := func(c storedChunk) error {
			select {
			case out <- c:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		c := newStoredChunk(0)
		err := s.readRange(ctx, st, reconcile.Key{}, reconcile.End, func(k reconcile.Key, raw []byte) error {
			c.keys = append(c.keys, k)
			c.buf = append(c.buf, raw...)
			c.ends = append(c.ends, len(c.buf))
			if len(c.keys) < scanChunk {
				return nil
			}
			if err := send(c); err != nil {
				return err
			}
			c = newStoredChunk(cap(c.buf))
			return nil
		})
		if err == nil && len(c.keys) > 0 {
			err = send(c)
		}
		errc <- err
	}()
	return out, func() error { return <-errc }
}

// newStoredChunk returns an empty chunk with room for scanChunk records
// of size bytes in all. A chunk sent belongs to the receiver, so every
// chunk is new.
func newStoredChunk(size int) storedChunk {
	return storedChunk{keys: make([]reconcile.Key, 0, scanChunk), ends: make([]int, 0, scanChunk), buf: make([]byte, 0, size)}
}

// checkedChunk is a storedChunk decoded and checked: msgs[i] is the
// message stored under keys[i], its fields sharing the chunk's buffer.
type checkedChunk struct {
	keys []reconcile.Key
	msgs []reconcile.Message
}

// checkChunks decodes every record of the chunks from in on a goroutine
// of its own and checks it against its key and st's scope (checkStored),
// so that the hashing takes a core of its own beside the scan and the
// writing. The channel yields the chunks in order and is closed when in
// is, or at the first record that fails; wait then returns that failure.
// Cancelling ctx stops it. The caller must call wait once, and may stop
// reading the channel before the end only after cancelling ctx.
func checkChunks(ctx context.Context, st *scopeState, in <-chan storedChunk) (<-chan checkedChunk, func() error) {
	out := make(chan checkedChunk, scanDepth)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		errc <- func() error {
			for c := range in {
				cc := checkedChunk{keys: c.keys, msgs: make([]reconcile.Message, len(c.keys))}
				for i, k := range c.keys {
					m := &cc.msgs[i]
					if err := unmarshalStored(k, c.record(i), m); err != nil {
						return err
					}
					if err := checkStored(st, k, m); err != nil {
						return err
					}
				}
				select {
				case out <- cc:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
			return nil
		}()
	}()
	return out, func() error { return <-errc }
}
