package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/storesync/storesync/reconcile"
)

// migrateBatch is how many records one step of an upgrade moves.
const migrateBatch = 1000

// checkFormat makes sure d holds a store in the layout this code writes:
// a new datastore gets the format record, a store of format 1 is
// upgraded in place, and one of an unknown format is refused.
//
// The upgrade moves each message from its format 1 record (by hash) to
// its format 2 record (by key) in batches that
// delete what they move, so that a crash midway leaves every message in
// exactly one of the layouts and the next open goes on from there. Trees
// and scope records are the same in both formats.
func checkFormat(ctx context.Context, d ds.Batching) error {
	b, err := d.Get(ctx, formatKey)
	switch {
	case err == nil:
		v, err := strconv.Atoi(string(b))
		switch {
		case err != nil:
			return fmt.Errorf("%w: format record %q", ErrCorrupt, b)
		case v != storeFormat:
			return fmt.Errorf("store format %d: this version reads format %d only", v, storeFormat)
		}
		return nil
	case !errors.Is(err, ds.ErrNotFound):
		return fmt.Errorf("read store format: %w", err)
	}
	for {
		n, err := migrateStep(ctx, d)
		if err != nil {
			return fmt.Errorf("upgrade store from format 1: %w", err)
		}
		if n == 0 {
			break
		}
	}
	if err := d.Put(ctx, formatKey, []byte(strconv.Itoa(storeFormat))); err != nil {
		return err
	}
	// The format record, the one record before the messages, goes into a
	// table of its own, not with the records after them that follow it
	// (settle).
	if err := settle(d, rootKey, msgsKey); err != nil {
		return err
	}
	return d.Sync(ctx, formatKey)
}

// migrateStep moves up to migrateBatch format 1 message records and
// returns how many it moved.
func migrateStep(ctx context.Context, d ds.Batching) (int, error) {
	res, err := d.Query(ctx, dsq.Query{Prefix: legacyMsgsKey.String(), Limit: migrateBatch})
	if err != nil {
		return 0, err
	}
	entries, err := res.Rest()
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	b, err := d.Batch(ctx)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		k := ds.RawKey(e.Key)
		var m reconcile.Message
		if err := reconcile.UnmarshalMessage(e.Value, &m); err != nil {
			return 0, fmt.Errorf("%w: %s: %w", ErrCorrupt, k, err)
		}
		key := m.Key()
		id := m.Scope().ID()
		idHex := scopeIDHex(id)
		if k.BaseNamespace() != key.Hash.String() || k.Parent().BaseNamespace() != idHex {
			return 0, fmt.Errorf("%w: %s holds another message", ErrCorrupt, k)
		}
		keys := newScopeKeys(idHex)
		if err := b.Put(ctx, keys.msg(key), e.Value); err != nil {
			return 0, err
		}
		if err := b.Delete(ctx, k); err != nil {
			return 0, err
		}
	}
	return len(entries), b.Commit(ctx)
}
