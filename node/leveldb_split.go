package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// splitStore is the datastore of a data folder that keeps its message
// records in one LevelDB and every other record in another: the store's
// default since format 2's split layout (OpenLevelDB).
//
// Why two: records in key order that land in a LevelDB holding nothing
// else fill tables that overlap no other, and LevelDB moves those down
// its levels without rewriting them. One record elsewhere in the same
// commit, such as a journal record, a tree node or a scope record, makes
// every table span the messages' range to that record's, so each new
// table overlaps the ones before and all are compacted, again and again
// as the store grows. Modelled with raw puts of 2 million records in
// batches of 1,000: with a journal record in each batch and tree nodes
// every 16 batches, in one LevelDB, 0.5 of plain raw puts, falling by
// the fifth; with the journal and the nodes in a second LevelDB, 0.95 to
// 1.0 in every fifth.
//
// A batch over both commits its other records first, then its message
// records, then what it was given for after them (later): a commit's
// journal record is durable before the messages it names (journal.go),
// and its cursor or import record after them, so that a kill between the
// two LevelDB writes leaves messages the journal covers, or a cursor
// behind what is stored, never the reverse.
type splitStore struct {
	msgs, meta *levelStore
	msgsDir    levelDir
	// failPart, when set (by tests), fails the parts of batches it
	// returns an error for, before they commit: a failure between the
	// two LevelDBs that a live process survives cannot be made
	// otherwise.
	failPart func(batchPart) error
}

var (
	_ ds.Batching = (*splitStore)(nil)
	_ rangeReader = (*splitStore)(nil)
	_ settler     = (*splitStore)(nil)
)

// splitPrefixes are the keys the message LevelDB holds: message records,
// and the hash index with the record that says it is whole, which are
// written with the messages they index.
var splitPrefixes = []string{msgsKey.String() + "/", hashIndexPrefix}

// isMsgRecord reports whether the record named k belongs in the message
// LevelDB. Go converts k for the comparisons without copying it.
func isMsgRecord(k []byte) bool {
	for _, p := range splitPrefixes {
		if len(k) >= len(p) && string(k[:len(p)]) == p {
			return true
		}
	}
	return string(k) == hashIndexOnKey.String()
}

// isMsgKey is isMsgRecord for a datastore key.
func isMsgKey(k ds.Key) bool { return isMsgName(k.String()) }

// isMsgName is isMsgRecord for a key as a string.
func isMsgName(s string) bool {
	for _, p := range splitPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return s == hashIndexOnKey.String()
}

func (s *splitStore) of(k ds.Key) *levelStore {
	if isMsgKey(k) {
		return s.msgs
	}
	return s.meta
}

// Get implements ds.Read.
func (s *splitStore) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	return s.of(k).Get(ctx, k)
}

// Has implements ds.Read.
func (s *splitStore) Has(ctx context.Context, k ds.Key) (bool, error) {
	return s.of(k).Has(ctx, k)
}

// GetSize implements ds.Read.
func (s *splitStore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	return s.of(k).GetSize(ctx, k)
}

// Put implements ds.Write.
func (s *splitStore) Put(ctx context.Context, k ds.Key, v []byte) error {
	return s.of(k).Put(ctx, k, v)
}

// Delete implements ds.Write.
func (s *splitStore) Delete(ctx context.Context, k ds.Key) error {
	return s.of(k).Delete(ctx, k)
}

// Sync flushes both LevelDBs' commits to disk, the messages first. The
// messages' LevelDB is flushed by an fsync of its log files rather than
// by a record written with fsync, as levelStore.Sync does: a record there
// would sort after the messages and keep the table it lands in, and
// every table of new messages after it, from moving down untouched.
func (s *splitStore) Sync(ctx context.Context, k ds.Key) error {
	if err := s.msgsDir.syncLogs(); err != nil {
		return err
	}
	return s.meta.Sync(ctx, k)
}

// levelDir is the folder of a LevelDB.
type levelDir string

// syncLogs fsyncs the LevelDB's log files: whatever it has written of its
// commits that are not yet in its tables (which LevelDB fsyncs itself
// when it writes them).
func (d levelDir) syncLogs() error {
	logs, err := filepath.Glob(filepath.Join(string(d), "*.log"))
	if err != nil {
		return err
	}
	for _, name := range logs {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // LevelDB dropped it: its records are in a table
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sync %s: %w", name, err)
		}
	}
	return nil
}

// Close closes both LevelDBs.
func (s *splitStore) Close() error {
	return errors.Join(s.msgs.Close(), s.meta.Close())
}

// Query implements ds.Read: a prefix within one LevelDB's keys asks that
// one; a prefix over both (the root) merges their results, and applies
// the query's orders, offset and limit to the merge.
func (s *splitStore) Query(ctx context.Context, q dsq.Query) (dsq.Results, error) {
	p := strings.TrimSuffix(q.Prefix, "/")
	switch {
	case isMsgName(p + "/"):
		return s.msgs.Query(ctx, q)
	case p != "" && p != rootKey.String():
		return s.meta.Query(ctx, q)
	}
	part := q
	part.Orders, part.Offset, part.Limit = nil, 0, 0
	var all []dsq.Entry
	for _, l := range []*levelStore{s.meta, s.msgs} {
		res, err := l.Query(ctx, part)
		if err != nil {
			return nil, err
		}
		es, err := res.Rest()
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
	}
	merged := q
	merged.Prefix, merged.Filters = "", nil
	return dsq.NaiveQueryApply(merged, dsq.ResultsWithEntries(merged, all)), nil
}

// scanRange implements rangeReader over the LevelDB that holds start,
// which must hold the whole range: the store scans message records only.
func (s *splitStore) scanRange(ctx context.Context, start, limit ds.Key, reverse bool, fn func(k, v []byte) error) error {
	l := s.of(start)
	if l != s.of(limit) {
		return errors.New("leveldb: a range across both databases")
	}
	return l.scanRange(ctx, start, limit, reverse, fn)
}

// settle is settler's: the records it settles (those after the messages)
// are in a LevelDB of their own, which the messages' tables never
// overlap, so there is nothing to do.
func (s *splitStore) settle(lo, hi ds.Key) error { return nil }

// Batch implements ds.Batching (see splitStore for the order in which its
// parts commit).
func (s *splitStore) Batch(ctx context.Context) (ds.Batch, error) {
	return &splitBatch{s: s}, nil
}

// laterWriter is a batch that can take writes to commit after the rest
// of it (splitBatch).
type laterWriter interface {
	later() ds.Write
}

// afterRecords returns what writes into b after its message records:
// b's later part, or b itself when its writes all commit at once.
func afterRecords(b ds.Write) ds.Write {
	if l, ok := b.(laterWriter); ok {
		return l.later()
	}
	return b
}

// splitBatch is a splitStore's batch: three LevelDB batches, made as
// they are first written, committed in order.
type splitBatch struct {
	s                 *splitStore
	meta, msgs, after *levelBatch
	done              bool
}

func (b *splitBatch) part(p **levelBatch, l *levelStore) *levelBatch {
	if *p == nil {
		*p = newLevelBatch(l)
	}
	return *p
}

// of returns the part a record goes to: the messages' when msg is set.
func (b *splitBatch) of(msg bool) *levelBatch {
	if msg {
		return b.part(&b.msgs, b.s.msgs)
	}
	return b.part(&b.meta, b.s.meta)
}

// Put implements ds.Batch.
func (b *splitBatch) Put(ctx context.Context, k ds.Key, v []byte) error {
	if b.done {
		return errBatchDone
	}
	return b.of(isMsgKey(k)).Put(ctx, k, v)
}

// putBytes is bytesPutter's.
func (b *splitBatch) putBytes(k, v []byte) error {
	if b.done {
		return errBatchDone
	}
	return b.of(isMsgRecord(k)).putBytes(k, v)
}

// Delete implements ds.Batch.
func (b *splitBatch) Delete(ctx context.Context, k ds.Key) error {
	if b.done {
		return errBatchDone
	}
	return b.of(isMsgKey(k)).Delete(ctx, k)
}

// later returns the writes that commit after the message records. They
// must not be message records.
func (b *splitBatch) later() ds.Write { return laterPart{b} }

// laterPart is splitBatch's later part.
type laterPart struct{ b *splitBatch }

// of returns the part a record of the later part goes to: message
// records still go with the messages.
func (l laterPart) of(k ds.Key) *levelBatch {
	if isMsgKey(k) {
		return l.b.of(true)
	}
	return l.b.part(&l.b.after, l.b.s.meta)
}

func (l laterPart) Put(ctx context.Context, k ds.Key, v []byte) error {
	if l.b.done {
		return errBatchDone
	}
	return l.of(k).Put(ctx, k, v)
}

func (l laterPart) Delete(ctx context.Context, k ds.Key) error {
	if l.b.done {
		return errBatchDone
	}
	return l.of(k).Delete(ctx, k)
}

// Commit implements ds.Batch: the other records, then the message
// records, then the later part. A part that fails stops the rest; the
// parts before it stay committed, and the error says which
// (committedParts).
func (b *splitBatch) Commit(ctx context.Context) error {
	if b.done {
		return errBatchDone
	}
	b.done = true
	parts := [...]*levelBatch{partMeta: b.meta, partRecords: b.msgs, partAfter: b.after}
	var stored [len(parts)]bool // a part with nothing to write is stored unless one before failed
	var err error
	for i, p := range parts {
		switch {
		case err != nil:
			if p != nil {
				p.discard()
			}
		case p == nil:
			stored[i] = true
		default:
			if b.s.failPart != nil {
				err = b.s.failPart(batchPart(i))
			}
			if err == nil {
				err = p.Commit(ctx)
			} else {
				p.discard()
			}
			stored[i] = err == nil
		}
	}
	if err != nil && (stored[partMeta] && b.meta != nil || stored[partRecords] && b.msgs != nil) {
		return &partialCommitError{err: err, meta: stored[partMeta], records: stored[partRecords]}
	}
	return err
}

// batchPart names a part of a splitBatch.
type batchPart int

// The parts of a splitBatch, in the order they commit.
const (
	partMeta batchPart = iota
	partRecords
	partAfter
)

// partialCommitError is the error of a splitBatch that committed its
// first parts, not the rest.
type partialCommitError struct {
	err           error
	meta, records bool // which parts committed
}

func (e *partialCommitError) Error() string {
	return "leveldb: batch committed in part: " + e.err.Error()
}

func (e *partialCommitError) Unwrap() error { return e.err }

// committedParts reports, for what a batch's Commit returned, whether its
// records other than messages and its message records are stored: both
// when err is nil, neither for any error but that of a splitBatch that
// committed in part.
func committedParts(err error) (meta, records bool) {
	if err == nil {
		return true, true
	}
	var p *partialCommitError
	if errors.As(err, &p) {
		return p.meta, p.records
	}
	return false, false
}
