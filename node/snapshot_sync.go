package node

import (
	"io"
	"os"
)

// syncEvery is how many bytes an export writes between two background
// syncs of its file.
const syncEvery = 32 << 20

// earlySync passes an export's writes and seeks to its file and syncs
// the file on a goroutine of its own every syncEvery bytes, so that the
// data goes to the disk while the export goes on and the final Sync finds
// little left to write: a file of hundreds of MiB otherwise waits for
// all of it at the end. Write and Seek are for one goroutine, the
// export's; the syncing goroutine touches nothing but the file's Sync,
// which may run beside a write.
type earlySync struct {
	f       *os.File
	every   int64         // syncEvery, but in tests
	pending int64         // bytes written since the last sync request
	req     chan struct{} // a sync wanted; closed by Sync or stop
	done    chan struct{} // closed when the syncing goroutine ends
	err     error         // its first error, read after done
	syncs   int           // background syncs done, read after done
}

var _ io.WriteSeeker = (*earlySync)(nil)

// newEarlySync starts syncing f in the background; the caller ends with
// Sync, or with stop when it gives the file up.
func newEarlySync(f *os.File) *earlySync {
	e := &earlySync{f: f, every: syncEvery, req: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(e.done)
		for range e.req {
			if err := f.Sync(); err != nil && e.err == nil {
				e.err = err
			}
			e.syncs++
		}
	}()
	return e
}

// Write writes p to the file and asks for a sync every syncEvery bytes;
// a sync still running when the next is due absorbs it.
func (e *earlySync) Write(p []byte) (int, error) {
	n, err := e.f.Write(p)
	if e.pending += int64(n); e.pending >= e.every {
		e.pending = 0
		select {
		case e.req <- struct{}{}:
		default:
		}
	}
	return n, err
}

// Seek seeks the file.
func (e *earlySync) Seek(off int64, whence int) (int64, error) { return e.f.Seek(off, whence) }

// Sync waits for the background syncs and returns their error, or
// syncs the file a last time. Call it, or stop, once.
func (e *earlySync) Sync() error {
	e.stop()
	if e.err != nil {
		return e.err
	}
	return e.f.Sync()
}

// stop ends the background syncs and waits for them.
func (e *earlySync) stop() {
	close(e.req)
	<-e.done
}
