package node

import (
	"context"

	"github.com/storesync/storesync/node/snapshot"
)

// prefetchDepth is how many verified batches the storing pass of an
// import may hold ahead of the one it stores: enough to keep the reader
// busy while a commit runs, few enough that memory stays a handful of
// batches (each at most the batch limit, 1 MiB by default, plus its
// messages).
const prefetchDepth = 2

// prefetched is a batch read ahead, with the reader's state after it, or
// the error that ended the read (io.EOF at the end of the file).
type prefetched struct {
	b   snapshot.Batch
	at  snapshot.State
	err error
}

// prefetch reads r's batches on a goroutine of its own, at most depth
// ahead of the caller, so that decoding and verifying the next batches
// (hashing every message) overlaps storing this one on a second core.
// The channel yields each batch with the state after it, in file order,
// then one item carrying the error that ended the read (io.EOF at the
// end), and is closed. The goroutine owns r until stop returns: stop
// ends it, waits for it, and may be called more than once.
func prefetch(ctx context.Context, r *snapshot.Reader, depth int) (<-chan prefetched, func()) {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan prefetched, depth)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for {
			var p prefetched
			if p.err = ctx.Err(); p.err == nil {
				p.b, p.err = r.Next()
				p.at = r.State()
			}
			select {
			case out <- p:
			case <-ctx.Done():
				return
			}
			if p.err != nil {
				return
			}
		}
	}()
	return out, func() {
		cancel()
		<-done
	}
}
