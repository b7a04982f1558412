package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ds "github.com/ipfs/go-datastore"
	dsleveldb "github.com/ipfs/go-ds-leveldb"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// LevelOption configures OpenLevelDB.
type LevelOption func(*levelConfig) error

type levelConfig struct {
	sync        bool
	writeBuffer int
	blockCache  int
}

// WithSyncWrites makes every commit wait for the disk (fsync) before it
// returns. Default false: a commit is in LevelDB's log, written to the
// operating system, when it returns, so a node killed at any moment
// (kill -9, a panic, an OOM kill) loses nothing it acknowledged, and only
// a crash of the machine itself may lose the last commits, which the next
// sync with a peer brings back. Turn it on where a store node is the only
// holder of its messages. Unsynced, a machine crash may keep the last
// commits of one of a folder's two LevelDBs and not the other's: messages
// whose journal record was lost are then stored but in no tree, which
// `storesync repair` (Repair) puts back.
func WithSyncWrites(on bool) LevelOption {
	return func(c *levelConfig) error {
		c.sync = on
		return nil
	}
}

// WithWriteBuffer sets the write buffer (memtable) size of the LevelDB
// that holds the messages. Larger buffers make bulk ingest faster, at
// the cost of memory (up to twice the size while one is flushed).
// Default 24 MiB; at least 1 MiB.
func WithWriteBuffer(bytes int) LevelOption {
	return func(c *levelConfig) error {
		if bytes < 1<<20 {
			return fmt.Errorf("write buffer of %d bytes is too small (min 1 MiB)", bytes)
		}
		c.writeBuffer = bytes
		return nil
	}
}

// WithBlockCache gives LevelDB a cache of decompressed blocks of the
// given size, through which data blocks pass and the index and filter
// blocks of its tables too. Default none (0): every open table keeps its
// index and its Bloom filter in memory, about 5 bytes a message (50 MiB
// at 10 million), and data blocks are read from the file system's cache.
//
// Why none: a cache of a fixed size holds every table's index and filter
// only while the store is small. At 10 million messages they no longer
// fit in 8 MiB, LevelDB's default, and each random read then fetches and
// checks an index block of about 100 KiB first: a leaf read took 21 to
// 29 µs there, against 10 to 12 µs at 1 million, and reconciliation
// sessions of 1,000 differences 2.2 to 3.2 times as long. With the index
// and filter in memory they took 12 to 14 µs, and the sessions 1.4 to 1.6
// times as long as at 1 million (storesync-bench -mode scattered and
// twoway -reps 5).
func WithBlockCache(bytes int) LevelOption {
	return func(c *levelConfig) error {
		if bytes < 0 {
			return errors.New("negative block cache")
		}
		c.blockCache = bytes
		return nil
	}
}

// OpenLevelDB opens, or creates, the LevelDB datastore in the folder at
// path: the default datastore of a store node. It creates the folder if
// needed. The caller owns the datastore and must Close it (ds.Batching is
// an io.Closer) after closing every Store opened over it.
//
// A new folder holds two LevelDBs: messages/ the message records (and the
// hash index), meta/ every other record, so that messages written in key
// order are never compacted (splitStore). The write buffer of meta/ is a
// third of the messages' (at least 4 MiB). A folder that holds one
// LevelDB at its top, as every folder did before, is opened as it is:
// one LevelDB keeps everything. Versions before the split layout cannot
// open a folder of two.
//
// Tables carry Bloom filters (10 bits a key), so that looking up an
// absent key rarely touches the disk, and the write buffer is larger
// than LevelDB's default, which is what bulk ingest is bound by. Commits
// are not fsynced unless WithSyncWrites says so. The datastore can list a
// key range in order from any start key, which the store uses to read a
// scope's messages sequentially.
//
// goleveldb (v1.0.0 and later) has a flaw the store's write path works
// around: a read that finds its key in the current write buffer while
// the previous one is being flushed never releases the previous one, so
// it is not reused, and the next write buffer is a fresh allocation (24
// MiB to clear and fault in). The tree caches the nodes its next write
// rewrites, so that bulk writes read nothing they have just written.
func OpenLevelDB(path string, opts ...LevelOption) (ds.Batching, error) {
	cfg := levelConfig{writeBuffer: 24 << 20}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("open leveldb: %w", err)
		}
	}
	if path == "" {
		// leveldb takes "" to mean in memory, never what a caller of a
		// disk store wants.
		return nil, errors.New("open leveldb: empty path")
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("open leveldb: %w", err)
	}
	files := openTablesLimit()
	if _, err := os.Stat(filepath.Join(path, "CURRENT")); err == nil {
		// A folder written before the split layout: one LevelDB holds
		// everything, as it did.
		return openLevel(path, cfg, cfg.writeBuffer, files)
	}
	msgsDir := filepath.Join(path, splitMessagesDir)
	msgs, err := openLevel(msgsDir, cfg, cfg.writeBuffer, files-files/4)
	if err != nil {
		return nil, err
	}
	meta, err := openLevel(filepath.Join(path, splitMetaDir), cfg, max(cfg.writeBuffer/3, 4<<20), files/4)
	if err != nil {
		return nil, errors.Join(err, msgs.Close())
	}
	return &splitStore{msgs: msgs, meta: meta, msgsDir: levelDir(msgsDir)}, nil
}

// The folders of a data folder's two LevelDBs (splitStore).
const (
	splitMessagesDir = "messages"
	splitMetaDir     = "meta"
)

// openLevel opens the one LevelDB in the folder at path, with a write
// buffer of writeBuffer bytes and files tables open at most.
func openLevel(path string, cfg levelConfig, writeBuffer, files int) (*levelStore, error) {
	o := &dsleveldb.Options{
		Filter:             filter.NewBloomFilter(10),
		WriteBuffer:        writeBuffer,
		BlockCacheCapacity: cfg.blockCache,
		DisableBlockCache:  cfg.blockCache == 0,
		// Without a block cache, a table evicted from the open files'
		// cache loses its index and filter, which its next read loads
		// again: keep as many open as the process may.
		OpenFilesCacheCapacity: files,
		// Blocks stay at LevelDB's 4 KiB. Blocks of 16 KiB made a scan
		// of a scope and the compactions of a bulk load cheaper (an
		// export 12 % faster, an import's storing 18 %), but a random
		// leaf read at 10 million messages slower (15 to 36 µs against
		// 12 to 16), and reconciliation sessions of 1,000 differences
		// there 40 % slower: sessions are what a node runs all day.
		// Tables of 8 MiB and levels of 640 MiB, 6.4 GiB and so on
		// (LevelDB's: 2 MiB, and 100 MiB, 1 GiB) make a bulk ingest
		// compact a quarter as often; they cost nothing at rest.
		CompactionTableSize: 8 << 20,
		CompactionTotalSize: 64 << 20,
		// In a folder of one LevelDB (before the split layout), every
		// flush of the journal writes tree nodes, whose keys sort after
		// the messages, so a level-0 table's keys run from new messages
		// to new nodes, a range that holds every older node of the tree:
		// its compaction rewrites them. Compacting level 0 at 8 tables
		// rather than 4 halves that rewriting, and slowing writes at 32 tables
		// and stopping them at 48 (LevelDB's: 8 and 12; RocksDB's: 20
		// and 36, of larger tables) lets a bulk load end with
		// compaction still to do rather than every commit after it
		// wait a millisecond. A read may look in more tables; their
		// bloom filters make a miss cheap.
		CompactionL0Trigger:    8,
		WriteL0SlowdownTrigger: 32,
		WriteL0PauseTrigger:    48,
	}
	d, err := dsleveldb.NewDatastore(path, o)
	if err != nil {
		return nil, fmt.Errorf("open leveldb %s: %w", path, err)
	}
	return &levelStore{Datastore: d, wo: &opt.WriteOptions{Sync: cfg.sync}}, nil
}

// levelStore is go-ds-leveldb's datastore with the write options of
// OpenLevelDB (go-ds-leveldb always fsyncs) and the range scan the store
// reads scopes with. Reads, queries and Close are go-ds-leveldb's.
type levelStore struct {
	*dsleveldb.Datastore
	wo *opt.WriteOptions
}

var (
	_ ds.Batching = (*levelStore)(nil)
	_ rangeReader = (*levelStore)(nil)
)

// Put implements ds.Write.
func (l *levelStore) Put(_ context.Context, k ds.Key, v []byte) error {
	return l.DB.Put(k.Bytes(), v, l.wo)
}

// Delete implements ds.Write.
func (l *levelStore) Delete(_ context.Context, k ds.Key) error {
	return l.DB.Delete(k.Bytes(), l.wo)
}

// syncKey is rewritten, with fsync, by Sync: LevelDB has no other way to
// flush its log. It sorts after the message records, as every record but
// the format record does (settle).
var syncKey = []byte("/storesync/synced")

// Sync flushes every commit so far to disk, whatever the prefix.
func (l *levelStore) Sync(context.Context, ds.Key) error {
	return l.DB.Put(syncKey, nil, &opt.WriteOptions{Sync: true})
}

// Batch implements ds.Batching: the puts and deletes apply together, or
// not at all, when Commit returns. A batch may not be used after Commit.
func (l *levelStore) Batch(context.Context) (ds.Batch, error) {
	return newLevelBatch(l), nil
}

// newLevelBatch returns a batch of l's.
func newLevelBatch(l *levelStore) *levelBatch {
	return &levelBatch{db: l.DB, b: batchPool.Get().(*leveldb.Batch), wo: l.wo}
}

// batchPool recycles LevelDB batches: a bulk commit of a few megabytes
// would otherwise grow a new buffer, copying it, every time.
var batchPool = sync.Pool{New: func() any { return new(leveldb.Batch) }}

// errBatchDone is returned by a batch used after its Commit.
var errBatchDone = errors.New("leveldb batch used after commit")

type levelBatch struct {
	db *leveldb.DB
	b  *leveldb.Batch
	wo *opt.WriteOptions
}

func (b *levelBatch) Put(_ context.Context, k ds.Key, v []byte) error {
	if b.b == nil {
		return errBatchDone
	}
	b.b.Put(k.Bytes(), v)
	return nil
}

// putBytes is Put with the key as bytes. LevelDB copies key and value
// into the batch, so the caller may reuse both at once.
func (b *levelBatch) putBytes(k, v []byte) error {
	if b.b == nil {
		return errBatchDone
	}
	b.b.Put(k, v)
	return nil
}

func (b *levelBatch) Delete(_ context.Context, k ds.Key) error {
	if b.b == nil {
		return errBatchDone
	}
	b.b.Delete(k.Bytes())
	return nil
}

func (b *levelBatch) Commit(context.Context) error {
	if b.b == nil {
		return errBatchDone
	}
	var err error
	if b.b.Len() > 0 {
		err = b.db.Write(b.b, b.wo)
	}
	b.discard()
	return err
}

// discard returns the batch's buffer to the pool, uncommitted.
func (b *levelBatch) discard() {
	if b.b == nil {
		return
	}
	b.b.Reset()
	batchPool.Put(b.b)
	b.b = nil
}

// scanRange calls fn for every record with start <= key < limit, in key
// order (descending if reverse), from a consistent snapshot of the
// database. The slices passed to fn are valid only during the call.
func (l *levelStore) scanRange(ctx context.Context, start, limit ds.Key, reverse bool, fn func(k, v []byte) error) error {
	// A scan reads each block once: caching them would only evict
	// what point reads (tree nodes) keep there.
	it := l.DB.NewIterator(&util.Range{Start: start.Bytes(), Limit: limit.Bytes()}, &opt.ReadOptions{DontFillCache: true})
	defer it.Release()
	first, next := it.First, it.Next
	if reverse {
		first, next = it.Last, it.Prev
	}
	for n, ok := 0, first(); ok; n, ok = n+1, next() {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// settler is a datastore that can write its memory out to tables
// (levelStore).
type settler interface {
	settle(lo, hi ds.Key) error
}

// settle writes LevelDB's memory table out to a table of its own if it
// holds a key in [lo, hi), and then compacts that range of keys alone.
//
// A LevelDB table holding keys on both sides of the message records
// overlaps every table of a run of new records written after it, which
// then cannot go down a level untouched (a trivial move) but are
// compacted, all of them at once. So every record but the format record
// sorts after the messages, the format record is settled when a new
// store writes it, and a bulk load settles the records after the
// messages before its first batch (beginBulk): its run of records then
// fills tables that hold nothing else.
//
// Only a store whose tables are all in the first two levels settles (a
// new one, or one that has taken little yet): in a larger store the
// tables around [lo, hi) hold other records too, tens of MiB that a range
// compaction would rewrite, and its other scopes' writes mix with a
// load's anyway.
func (l *levelStore) settle(lo, hi ds.Key) error {
	for level := 2; level < 7; level++ {
		// Settling only saves work: a store it cannot tell about
		// does without.
		if n, err := l.DB.GetProperty(fmt.Sprintf("leveldb.num-files-at-level%d", level)); err != nil || n != "0" {
			return nil
		}
	}
	return l.DB.CompactRange(util.Range{Start: lo.Bytes(), Limit: hi.Bytes()})
}

// settle settles d's keys in [lo, hi) when d is a settler.
func settle(d ds.Datastore, lo, hi ds.Key) error {
	if s, ok := d.(settler); ok {
		return s.settle(lo, hi)
	}
	return nil
}
