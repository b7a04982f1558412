package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/protocol"
)

// ProgressVerify is the kind of the progress an import reports while it
// verifies the file, before it stores anything: Done of Total messages
// verified, Total being the header's count, and Bytes the offset reached
// in the file. The storing pass then reports protocol.ProgressImport.
const ProgressVerify = protocol.ProgressKind("verify")

// ImportReport says what an import did.
type ImportReport struct {
	// Header is the file's header, proven by the verification pass: the
	// file holds exactly Header.Count messages of Header.Scope, whose
	// hashes, recomputed from their content, add up to Header.Agg, so
	// Header.Root() is the root of the file's content. Compare it with a
	// root you trust to know the content is the one you wanted.
	Header snapshot.Header
	// Batches is the number of batches in the file.
	Batches int
	// Added, Duplicates and Rejected count what this call did with the
	// messages it stored: new to the store, stored already, or refused
	// by the store (invalid for it, such as larger than its maximum
	// message size; RejectReason says why the first was). With the
	// messages an earlier import stored (ResumedMessages) they add up to
	// Header.Count.
	Added, Duplicates, Rejected int
	RejectReason                error
	// Resumed reports that an earlier import of the same file was cut
	// short after storing ResumedBatches batches holding ResumedMessages
	// messages, and that this call went on from there.
	Resumed         bool
	ResumedBatches  int
	ResumedMessages int
	// Bytes is the length of the batches this call stored.
	Bytes int64
	// Verify and Store are the durations of the two passes; a bulk
	// import (Import) has only the second.
	Verify, Store time.Duration
	// After is the scope's state once the import was done.
	After ScopeStats
}

// ErrImportRunning is returned by an import of a scope that another
// import into the same store is storing at the moment.
var ErrImportRunning = errors.New("an import of this scope is running")

// Import reads the snapshot at r's current offset (package snapshot) and
// stores its messages, keeping the file's scope (AddScope) if the store
// does not yet. It returns what it did, or the first error.
//
// Nothing is stored from a bad file. Into a scope that holds messages, a
// first pass reads the whole file with a snapshot.Reader to its end
// (structure, checksums and chain, every message's hash recomputed from
// its content, key order, and the count, aggregate and key range against
// the header) and stores nothing; only then does a second pass store the
// batches. A truncated, corrupted or forged file thus fails with the
// reader's error (wrapping snapshot.ErrTruncated, ErrCorrupt,
// ErrMismatch, ...) and leaves the store as it was. The verification
// pass takes about 15 % of such an import (0.44 s of 2.9 s for 1,000,000
// messages of 256 bytes into LevelDB on two shared cores).
//
// Into a store that does not keep the scope, or keeps it with no message,
// the import restores it in one pass (a bulk import): it verifies each
// batch as the first pass would, stores it, and builds the scope's tree
// from the keys in order (reconcile.Builder) rather than inserting them.
// A scope not kept is kept from the commit that ends the import, and
// AddScope of it fails with ErrImportRunning until then. A kept scope
// takes Puts and syncs meanwhile as always, but their keys reach its
// tree (Tree, Set) only when the import ends. A file found bad at any
// point, its end included, fails with the same errors and deletes what
// the import stored, so the store is again as it was (but for what Puts
// added meanwhile). Subscribers are not told of a bulk import's
// messages: it restores a scope, it does not carry new traffic. A crash
// during a bulk import leaves its bulk record (/storesync/resume/bulk/),
// and the next OpenStore keeps the scope with the messages stored
// (rebuilding its tree from them, as Repair does), each verified before
// it was stored.
//
// An import is resumable and idempotent. Into a scope that holds
// messages, after each batch it records the reader's snapshot.State in
// the store, in the datastore batch that stores the batch's last messages
// (the layout's /storesync/resume/import/ record of the scope); an import
// of the same file that finds the record goes on after the batches it
// names (the verification pass still reads the whole file, which may
// have changed), and a record of another file is replaced. The record is
// deleted at the end. A bulk import writes the record only with the tree
// nodes it writes before its end (every 64 MiB of them, about 1.4
// million messages) and when it is cut short (ctx, a failing datastore);
// cut short, it keeps what it stored, so that the next import of the file
// resumes as above. Messages stored already count as duplicates, so
// importing a file twice stores nothing the second time. A concurrent
// import of the same scope into the same store fails at once with
// ErrImportRunning.
//
// Into a scope that holds messages, they are stored as Put stores them
// (subscribers see the new ones) in commits of at most 4,096 messages.
// When the import succeeds, the store holds every message of the file but
// the rejected ones; a retention running meanwhile may delete old ones
// again. The storing pass checks that its file has the same header as
// the verified one and verifies every batch again before storing it, on a
// second goroutine a few batches ahead of the commits.
//
// The reader's maximum message size defaults to the store's when that is
// larger than snapshot.DefaultMaxMessageSize; opts come after it. Import
// reports ProgressVerify during the first pass, if there is one, and
// protocol.ProgressImport (Done counting the messages an earlier import
// stored) after every batch stored. It moves r's offset as it pleases.
func (s *Store) Import(ctx context.Context, r io.ReadSeeker, opts ...snapshot.Option) (ImportReport, error) {
	rep, err := s.importFrom(ctx, r, nil, opts)
	if err != nil {
		return rep, fmt.Errorf("import: %w", err)
	}
	return rep, nil
}

// ImportFile imports the snapshot file at path; see Import.
func (s *Store) ImportFile(ctx context.Context, path string, opts ...snapshot.Option) (ImportReport, error) {
	return s.importFile(ctx, path, nil, opts)
}

func (s *Store) importFile(ctx context.Context, path string, obs snapshotObserver, opts []snapshot.Option) (ImportReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImportReport{}, fmt.Errorf("import %s: %w", path, err)
	}
	defer f.Close()
	rep, err := s.importFrom(ctx, f, obs, opts)
	if err != nil {
		return rep, fmt.Errorf("import %s: %w", path, err)
	}
	return rep, nil
}

// importFrom is Import, telling obs what it stored. Its errors name the
// scope and the pass, and leave naming the file to the caller.
func (s *Store) importFrom(ctx context.Context, r io.ReadSeeker, obs snapshotObserver, opts []snapshot.Option) (ImportReport, error) {
	var rep ImportReport
	if s.cfg.maxMessageSize > snapshot.DefaultMaxMessageSize {
		opts = append([]snapshot.Option{snapshot.WithMaxMessageSize(s.cfg.maxMessageSize)}, opts...)
	}
	base, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return rep, err
	}
	start := time.Now()
	vr, err := snapshot.NewReader(r, opts...)
	if err != nil {
		return rep, err
	}
	defer vr.Close()
	h := vr.Header()
	rep.Header = h
	// The header bytes, by their digest: the storing pass must read the
	// same file.
	file, err := vr.State().MarshalBinary()
	if err != nil {
		return rep, err
	}
	unlock, err := lockImport(s, h.Scope)
	if err != nil {
		return rep, fmt.Errorf("scope %s: %w", h.Scope, err)
	}
	defer unlock()
	mode, bst, err := s.claimBulk(h.Scope)
	if err != nil {
		return rep, fmt.Errorf("scope %s: %w", h.Scope, err)
	}
	if mode != twoPasses {
		if err := s.enter(); err != nil {
			return rep, errors.Join(err, s.releaseBulk(ctx, mode, bst))
		}
		defer s.calls.Done()
		err := s.bulkImport(ctx, mode, bst, vr, obs, &rep)
		err = errors.Join(err, s.releaseBulk(ctx, mode, bst))
		rep.Store = time.Since(start)
		rep.After, _ = s.Stats(h.Scope)
		return rep, err
	}

	end, seen, err := verifySnapshot(ctx, vr)
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	rep.Batches = end.Batches()
	rep.Verify = time.Since(start)

	start = time.Now()
	if err := s.AddScope(ctx, h.Scope); err != nil {
		return rep, err
	}
	st, err := s.enterScope(h.Scope)
	if err != nil {
		return rep, err
	}
	defer s.calls.Done()
	if _, err := r.Seek(base, io.SeekStart); err != nil {
		return rep, err
	}
	sr, err := snapshot.NewReader(r, opts...)
	if err != nil {
		return rep, changed(err)
	}
	defer sr.Close()
	if again, err := sr.State().MarshalBinary(); err != nil || !bytes.Equal(again, file) {
		return rep, errors.New("the file changed since it was verified: another header")
	}
	err = s.store(ctx, st, sr, seen, obs, &rep)
	rep.Store = time.Since(start)
	if err != nil {
		return rep, fmt.Errorf("scope %s: %w", h.Scope, err)
	}
	rep.After, _ = s.Stats(h.Scope)
	return rep, nil
}

// changed explains an error of the storing pass: the verification pass
// read the same bytes without one, so a snapshot error means the file
// changed in between.
func changed(err error) error {
	for _, e := range []error{snapshot.ErrFormat, snapshot.ErrTruncated, snapshot.ErrCorrupt, snapshot.ErrMismatch, snapshot.ErrTooLarge} {
		if errors.Is(err, e) {
			return fmt.Errorf("the file changed since it was verified: %w", err)
		}
	}
	return fmt.Errorf("read again: %w", err)
}

// verifySnapshot reads r to its end, reporting ProgressVerify after each
// batch, and returns the reader's final state and every state it passed
// through at a batch boundary (marshalled): the only states an import
// record of this file may honestly hold.
func verifySnapshot(ctx context.Context, r *snapshot.Reader) (snapshot.State, map[string]bool, error) {
	h := r.Header()
	seen := make(map[string]bool)
	for {
		if err := ctx.Err(); err != nil {
			return snapshot.State{}, nil, err
		}
		b, err := r.Verify() // the messages are the storing pass's to read
		if errors.Is(err, io.EOF) {
			return r.State(), seen, nil
		}
		if err != nil {
			return snapshot.State{}, nil, err
		}
		at, err := r.State().MarshalBinary()
		if err != nil {
			return snapshot.State{}, nil, err
		}
		seen[string(at)] = true
		protocol.ReportProgress(ctx, protocol.Progress{Kind: ProgressVerify, Scope: h.Scope,
			Done: int(r.State().Count()), Total: int(h.Count), Bytes: b.Next})
	}
}

// store is the storing pass: it resumes r from the scope's import record
// if that is one of the states the verification pass saw, then stores
// every batch with the record of the state after it, and deletes the
// record at the end. Reading and verifying runs on a goroutine of its
// own (prefetch), a few batches ahead of the commits.
func (s *Store) store(ctx context.Context, st *scopeState, r *snapshot.Reader, seen map[string]bool, obs snapshotObserver, rep *ImportReport) error {
	h := r.Header()
	recorded, err := s.resumeImport(ctx, st, r, seen)
	if err != nil {
		return err
	}
	if at := r.State(); at.Batches() > 0 {
		rep.Resumed, rep.ResumedBatches, rep.ResumedMessages = true, at.Batches(), int(at.Count())
	}
	progress := func(done int, offset int64) {
		protocol.ReportProgress(ctx, protocol.Progress{Kind: protocol.ProgressImport, Scope: h.Scope,
			Done: done, Total: int(h.Count), Bytes: offset})
	}
	progress(rep.ResumedMessages, r.State().Offset())
	// The reader verifies the next batches while this goroutine stores.
	eof := false
	batches, stop := prefetch(ctx, r, prefetchDepth)
	defer stop()
	for p := range batches {
		if err := ctx.Err(); err != nil {
			return err
		}
		if errors.Is(p.err, io.EOF) {
			eof = true
			break
		}
		if p.err != nil {
			return changed(p.err)
		}
		b, at := p.b, p.at
		rec, err := at.MarshalBinary()
		if err != nil {
			return err
		}
		res, err := s.put(ctx, b.Messages, b.Keys, writeImportRecord(st, rec))
		// A failed put may have committed the batch's first parts; they
		// count, and a resumed import finds them stored.
		added := len(res.Added)
		rep.Added += added
		rep.Duplicates += res.Duplicates
		rep.Rejected += len(res.Rejected)
		if rep.RejectReason == nil && len(res.Rejected) > 0 {
			rep.RejectReason = res.Rejected[0].Err
		}
		var size int64
		if err == nil {
			size = b.Next - b.Offset
			rep.Bytes += size
		}
		if obs != nil {
			obs.imported(h.Scope, added, res.Duplicates, len(res.Rejected), size)
		}
		if err != nil {
			return err
		}
		recorded = true
		progress(int(at.Count()), b.Next)
	}
	if !eof {
		// The reader stopped without an error only when ctx ended.
		return context.Cause(ctx)
	}
	if recorded {
		if err := s.deleteImportRecord(ctx, st); err != nil {
			return err
		}
	}
	if n := rep.ResumedMessages + rep.Added + rep.Duplicates + rep.Rejected; uint64(n) != h.Count {
		return fmt.Errorf("the store accounted for %d of the file's %d messages", n, h.Count)
	}
	return nil
}
