package node

import (
	"context"
	"errors"
	"fmt"
	"slices"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/storesync/storesync/reconcile"
)

// RepairReport says what Repair did to one scope.
type RepairReport struct {
	Scope reconcile.Scope
	// Recorded is the count the scope's record held before the repair.
	Recorded uint64
	// Messages is the count the scope holds now: every stored message
	// record that decodes and hashes to its key.
	Messages uint64
	// Dropped counts the message records deleted for not doing so.
	Dropped int
	// Root is the scope's root after the repair.
	Root reconcile.Fingerprint
}

// repairChunk is how many records one batch of a repair deletes.
const repairChunk = 8192

// repairNodeBytes is how many bytes of tree nodes a repair builds before
// it writes them.
const repairNodeBytes = 4 << 20

// Repair rebuilds, in the datastore of a store that is not open, every
// scope's tree and record from the scope's stored messages, which are
// the truth the rest is derived from. It is the way back from ErrCorrupt:
// a datastore that applied a batch in part (go-datastore does not promise
// atomic batches; OpenLevelDB's does apply them atomically), a record or
// node damaged on disk. Every message record is decoded and hashed; one
// that does not match its key, or that is of another scope, is deleted
// and counted in Dropped. A hash index (WithHashIndex) is written again. The journal of commits not yet in the trees is
// dropped, the rebuilt trees holding every message. A repair cut short
// leaves the store as corrupt as before, or more: run it again. It takes
// one pass over the messages, in key order over OpenLevelDB's datastore
// (over another, the scope's keys are sorted in memory first), and
// builds each tree in the same pass (reconcile.Builder).
func Repair(ctx context.Context, d ds.Batching) ([]RepairReport, error) {
	if err := checkFormat(ctx, d); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	recs, err := listScopeRecords(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	if err := deletePrefix(ctx, d, journalKey); err != nil {
		return nil, fmt.Errorf("repair: drop the journal: %w", err)
	}
	var out []RepairReport
	for _, rec := range recs {
		rep, err := repairScope(ctx, d, rec)
		if err != nil {
			return out, fmt.Errorf("repair: scope %s: %w", rec.scope, err)
		}
		out = append(out, rep)
	}
	// The index entries of dropped messages are left: a lookup reads the
	// message too. Rewriting every entry restores any that are missing.
	if indexed, err := d.Has(ctx, hashIndexOnKey); err != nil || !indexed {
		return out, err
	}
	if err := buildHashIndex(ctx, d); err != nil {
		return out, fmt.Errorf("repair: %w", err)
	}
	return out, d.Sync(ctx, rootKey)
}

// repairScope rebuilds one scope's tree and record from its messages.
func repairScope(ctx context.Context, d ds.Batching, rec scopeRecord) (RepairReport, error) {
	rep := RepairReport{Scope: rec.scope, Recorded: rec.agg.Count}
	st := newScopeState(rec.scope)
	if err := deletePrefix(ctx, d, treeKey(st.idHex)); err != nil {
		return rep, fmt.Errorf("delete the tree: %w", err)
	}
	tree, err := reconcile.Open(ctx, d, treeKey(st.idHex))
	if err != nil {
		return rep, err
	}
	// The records come in key order: the tree is built in one pass, its
	// nodes written as they close, with the deletions of bad records.
	build, err := tree.Build()
	if err != nil {
		return rep, err
	}
	var bad []reconcile.Key
	write := func(finish bool) error {
		b, err := d.Batch(ctx)
		if err != nil {
			return err
		}
		if finish {
			err = build.Finish(ctx, b)
		} else {
			err = build.WriteClosed(ctx, b)
		}
		for _, k := range bad {
			if err == nil {
				err = b.Delete(ctx, st.keys.msg(k))
			}
		}
		if err == nil {
			err = b.Commit(ctx)
		}
		if err != nil {
			return err
		}
		rep.Dropped += len(bad)
		bad = bad[:0]
		return nil
	}
	check := func(k reconcile.Key, raw []byte) error {
		var m reconcile.Message
		if unmarshalStored(k, raw, &m) != nil || checkStored(st, k, &m) != nil {
			bad = append(bad, k)
		} else if err := build.Add(k); err != nil {
			return err
		}
		if len(bad) >= repairChunk || build.Buffered() >= repairNodeBytes {
			return write(false)
		}
		return nil
	}
	if rr, ok := d.(rangeReader); ok {
		err = scanMsgs(ctx, rr, st, reconcile.Key{}, reconcile.End, check)
	} else {
		err = eachSortedRecord(ctx, d, st, check)
	}
	if err == nil {
		err = write(true)
	}
	if err == nil {
		err = build.Commit()
	}
	if err != nil {
		return rep, err
	}
	agg := tree.Root()
	rep.Messages, rep.Root = agg.Count, agg.Fingerprint()
	rec.agg = agg
	if err := d.Put(ctx, scopeRecordKey(st.idHex), rec.encode()); err != nil {
		return rep, err
	}
	return rep, d.Sync(ctx, rootKey)
}

// eachSortedRecord calls fn for every message record of st in key order,
// from a datastore that cannot scan a key range: it lists the keys, sorts
// them, then reads each record.
func eachSortedRecord(ctx context.Context, d ds.Datastore, st *scopeState, fn func(reconcile.Key, []byte) error) error {
	var keys []reconcile.Key
	if err := eachStoredKey(ctx, d, st, func(k reconcile.Key) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return err
	}
	slices.SortFunc(keys, reconcile.Key.Compare)
	for _, k := range keys {
		v, err := d.Get(ctx, st.keys.msg(k))
		if errors.Is(err, ds.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// deletePrefix deletes every record under prefix, in batches. It lists
// the keys first: a tree's nodes are a few percent of its scope's keys.
func deletePrefix(ctx context.Context, d ds.Batching, prefix ds.Key) error {
	return eachKeyBatched(ctx, d, prefix, func(b ds.Batch, k string) error {
		return b.Delete(ctx, ds.RawKey(k))
	})
}

// eachKeyBatched lists the keys under prefix and calls fn with each,
// with a batch that commits every repairChunk keys.
func eachKeyBatched(ctx context.Context, d ds.Batching, prefix ds.Key, fn func(b ds.Batch, key string) error) error {
	res, err := d.Query(ctx, dsq.Query{Prefix: prefix.String(), KeysOnly: true})
	if err != nil {
		return err
	}
	entries, err := res.Rest()
	if err != nil {
		return err
	}
	for len(entries) > 0 {
		n := min(len(entries), repairChunk)
		b, err := d.Batch(ctx)
		if err != nil {
			return err
		}
		for _, e := range entries[:n] {
			if err := fn(b, e.Key); err != nil {
				return err
			}
		}
		if err := b.Commit(ctx); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}
