package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// ProgressExport is the kind of the progress an export reports through
// protocol.ReportProgress: Done of Total messages written and Bytes the
// file's length so far. Total is the scope's count when the export began
// until the last event, which has the count the file holds.
const ProgressExport = protocol.ProgressKind("export")

// Export writes the messages of a kept scope (ErrUnknownScope otherwise)
// to w as a snapshot (package snapshot) and returns the header it wrote,
// whose Root is the scope's root as the snapshot saw it. The messages are
// read in key order in one sequential pass; over LevelDB (OpenLevelDB)
// that pass reads one consistent snapshot of the database, so messages
// stored or deleted meanwhile are either all in the file or all out of
// it. Over another datastore a message stored or deleted during the
// export may or may not be in the file; the file is consistent with
// itself either way.
//
// Every stored message is checked against its record's key and scope
// before it is written, so the store never exports what it cannot vouch
// for (ErrCorrupt). The writer's maximum message size defaults to the
// store's when that is larger than snapshot.DefaultMaxMessageSize, so
// that anything the store holds can be exported; opts come after it.
// The store is read, and its records checked, on goroutines of their own
// while the calling one compresses and writes. Export reports
// ProgressExport after every batch written. It writes w from its current
// offset and leaves it at the end of the snapshot; a failed export leaves
// a partial snapshot that any reader refuses (ExportFile leaves nothing).
func (s *Store) Export(ctx context.Context, sc reconcile.Scope, w io.WriteSeeker, opts ...snapshot.Option) (snapshot.Header, error) {
	h, err := s.export(ctx, sc, w, nil, opts)
	if err != nil {
		return h, fmt.Errorf("export scope %s: %w", sc, err)
	}
	return h, nil
}

// ExportFile exports a kept scope (see Export) to the file at path,
// readable by everyone as a file meant for publishing. It writes a
// temporary file in path's folder, syncs it to disk (as it writes, every
// 32 MiB, and at the end) and renames it over path, so that path holds
// either what it held before or the whole snapshot, never part of one,
// and a failed export leaves nothing behind.
func (s *Store) ExportFile(ctx context.Context, sc reconcile.Scope, path string, opts ...snapshot.Option) (snapshot.Header, error) {
	return s.exportFile(ctx, sc, path, nil, opts)
}

func (s *Store) exportFile(ctx context.Context, sc reconcile.Scope, path string, obs snapshotObserver, opts []snapshot.Option) (snapshot.Header, error) {
	// Refuse an unknown scope before creating anything.
	if _, ok := s.state(sc); !ok {
		return snapshot.Header{}, fmt.Errorf("export scope %s: %w", sc, ErrUnknownScope)
	}
	f, tmp, err := createTemp(path)
	if err != nil {
		return snapshot.Header{}, fmt.Errorf("export scope %s: %w", sc, err)
	}
	es := newEarlySync(f)
	h, err := s.export(ctx, sc, es, obs, opts)
	if err == nil {
		err = es.Sync()
	} else {
		es.stop()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		// The temporary file is ours alone; nothing else can be lost.
		_ = os.Remove(tmp)
		return snapshot.Header{}, fmt.Errorf("export scope %s to %s: %w", sc, path, err)
	}
	// The rename is durable once the folder is synced.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return h, fmt.Errorf("export scope %s to %s: %w", sc, path, err)
	}
	return h, nil
}

// createTemp creates a new file beside path with a name of its own, so
// that two exports to the same path never write the same file, and mode
// 0644 less the umask.
func createTemp(path string) (*os.File, string, error) {
	for range 10 {
		var r [6]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, "", err
		}
		tmp := path + "." + hex.EncodeToString(r[:]) + ".tmp"
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, tmp, err
	}
	return nil, "", fmt.Errorf("no free temporary name beside %s", path)
}

// syncDir makes the entries of a folder durable, a rename among them.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// export is Export, telling obs what it wrote; the caller names the
// scope in its errors.
func (s *Store) export(ctx context.Context, sc reconcile.Scope, w io.WriteSeeker, obs snapshotObserver, opts []snapshot.Option) (snapshot.Header, error) {
	st, err := s.enterScope(sc)
	if err != nil {
		return snapshot.Header{}, err
	}
	defer s.calls.Done()
	if s.cfg.maxMessageSize > snapshot.DefaultMaxMessageSize {
		opts = append([]snapshot.Option{snapshot.WithMaxMessageSize(s.cfg.maxMessageSize)}, opts...)
	}
	base, err := w.Seek(0, io.SeekCurrent)
	if err != nil {
		return snapshot.Header{}, err
	}
	cw := &countingWriter{w: w, base: base}
	sw, err := snapshot.NewWriter(cw, sc, opts...)
	if err != nil {
		return snapshot.Header{}, err
	}
	total := int(st.snap.Load().agg.Count)
	var n, reported int
	var flushed int64 // the file's length at the last report
	report := func() {
		protocol.ReportProgress(ctx, protocol.Progress{Kind: ProgressExport, Scope: sc, Done: n, Total: total, Bytes: cw.end})
		if obs != nil {
			obs.exported(sc, n-reported, cw.end-flushed)
		}
		reported, flushed = n, cw.end
	}
	add := func(c checkedChunk) error {
		for i := range c.msgs {
			before := cw.end
			// The checking stage hashed the message: the writer need not
			// again.
			if err := sw.AddKeyed(c.msgs[i], c.keys[i]); err != nil {
				return err
			}
			// The writer wrote out a batch before taking the message:
			// one that holds every message before it.
			if cw.end != before {
				report()
			}
			n++
		}
		return nil
	}
	// Three stages on goroutines of their own: the store is read
	// (scanScope), its records decoded and checked (checkChunks), and
	// this one compresses and writes, so that each takes a share of the
	// cores.
	scanCtx, cancel := context.WithCancel(ctx)
	chunks, waitScan := s.scanScope(scanCtx, st)
	checked, waitCheck := checkChunks(scanCtx, st, chunks)
	for c := range checked {
		if err = ctx.Err(); err != nil {
			break
		}
		if err = add(c); err != nil {
			break
		}
	}
	cancel()
	if cerr := waitCheck(); err == nil {
		err = cerr
	}
	if serr := waitScan(); err == nil {
		err = serr
	}
	if err != nil {
		_, _ = sw.Close() // releases the compressor; the file is partial anyway
		return snapshot.Header{}, err
	}
	h, err := sw.Close()
	if err != nil {
		return snapshot.Header{}, err
	}
	// The scope may have changed since the export began: the file says
	// how many messages the export saw.
	total = n
	report()
	return h, nil
}

// countingWriter passes writes and seeks through and keeps the furthest
// offset written from base: the length of the snapshot so far.
type countingWriter struct {
	w        io.WriteSeeker
	base     int64
	pos, end int64 // from base
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.pos += int64(n)
	c.end = max(c.end, c.pos)
	return n, err
}

func (c *countingWriter) Seek(off int64, whence int) (int64, error) {
	abs, err := c.w.Seek(off, whence)
	if err == nil {
		c.pos = abs - c.base
	}
	return abs, err
}
