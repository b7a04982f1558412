package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// The hash index finds a message by its hash alone, which is how Waku
// clients name messages (Store v3 cursors and lookups): a record per
// message, /storesync/x/<hash prefix b64> holding the scope ID and the
// timestamp, which with the hash make the message's record key. It is
// kept only by a store opened WithHashIndex. It is written in the batch
// that writes the message and deleted in the batch that deletes it; a
// stale entry (its message gone) is harmless, since a lookup reads the
// message too. Records written as often as messages sort after them (see
// the package doc), hence the name "x".
var hashIndexKey = rootKey.ChildString("x")

// hashIndexOnKey is there while the index is whole: set once it is built,
// deleted before it is dropped.
var hashIndexOnKey = rootKey.ChildString("xon")

// ErrNoHashIndex is returned by Locate on a store opened without
// WithHashIndex.
var ErrNoHashIndex = errors.New("the store keeps no hash index (WithHashIndex)")

// hashIndexPrefix is hashIndexKey as the prefix of index record keys.
var hashIndexPrefix = hashIndexKey.String() + "/"

// indexedHashLen is how much of a hash names its index record: 128 bits,
// beyond any author's grinding, in a key 40 % shorter than the whole
// hash's (the index's cost in LevelDB is in its bytes, which compactions
// rewrite over and over since its keys are random). A lookup checks the
// message record under its whole hash.
const indexedHashLen = 16

// hashNameLen is the length of a hash in an index record name.
var hashNameLen = sortedBase64.EncodedLen(indexedHashLen)

// indexValueLen is the length of an index record: the scope ID, then the
// timestamp, big-endian.
const indexValueLen = 8 + 8

// appendIndexKey appends the index record key of the message with hash h.
func appendIndexKey(dst []byte, h *reconcile.Hash) []byte {
	dst = append(dst, hashIndexPrefix...)
	n := len(dst)
	dst = append(dst, make([]byte, hashNameLen)...)
	sortedBase64.Encode(dst[n:], h[:indexedHashLen])
	return dst
}

// indexKey returns the index record key of the message with hash h.
func indexKey(h *reconcile.Hash) ds.Key {
	return ds.RawKey(string(appendIndexKey(make([]byte, 0, len(hashIndexPrefix)+hashNameLen), h)))
}

// appendIndexValue appends the index record of a message of the scope id
// with timestamp ts.
func appendIndexValue(dst []byte, id [8]byte, ts uint64) []byte {
	dst = append(dst, id[:]...)
	return binary.BigEndian.AppendUint64(dst, ts)
}

// parseIndexValue returns the scope ID and timestamp an index record holds.
func parseIndexValue(v []byte) (id [8]byte, ts uint64, err error) {
	if len(v) != indexValueLen {
		return id, 0, fmt.Errorf("%w: hash index record of %d bytes", ErrCorrupt, len(v))
	}
	copy(id[:], v[:8])
	return id, binary.BigEndian.Uint64(v[8:]), nil
}

// Located is a stored message found by its hash.
type Located struct {
	Scope reconcile.Scope
	Key   reconcile.Key
}

// Locate finds the stored message with hash h in a kept scope: its scope
// and key, ok false if no such message is stored. It reads the index
// record and the message's record.
func (s *Store) Locate(ctx context.Context, h reconcile.Hash) (loc Located, ok bool, err error) {
	if err := s.enter(); err != nil {
		return loc, false, err
	}
	defer s.calls.Done()
	if !s.cfg.hashIndex {
		return loc, false, ErrNoHashIndex
	}
	st, k, ok, err := s.locate(ctx, &h)
	if !ok || err != nil {
		return loc, false, err
	}
	return Located{Scope: st.scope, Key: k}, true, nil
}

// locate is Locate for a caller inside the store.
func (s *Store) locate(ctx context.Context, h *reconcile.Hash) (*scopeState, reconcile.Key, bool, error) {
	v, err := s.d.Get(ctx, indexKey(h))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, reconcile.Key{}, false, nil
	}
	if err != nil {
		return nil, reconcile.Key{}, false, fmt.Errorf("hash index: %w", err)
	}
	id, ts, err := parseIndexValue(v)
	if err != nil {
		return nil, reconcile.Key{}, false, err
	}
	st, ok := s.stateByID(id)
	if !ok {
		return nil, reconcile.Key{}, false, nil
	}
	k := reconcile.Key{TS: ts, Hash: *h}
	has, err := s.d.Has(ctx, st.keys.msg(k))
	if err != nil || !has {
		return nil, reconcile.Key{}, false, err
	}
	return st, k, true, nil
}

// syncHashIndex makes the index of d whole if on, and drops it if not.
func syncHashIndex(ctx context.Context, d ds.Batching, on bool) error {
	whole, err := d.Has(ctx, hashIndexOnKey)
	switch {
	case err != nil:
		return err
	case on && !whole:
		if err := buildHashIndex(ctx, d); err != nil {
			return err
		}
		if err := d.Put(ctx, hashIndexOnKey, []byte("1")); err != nil {
			return err
		}
		return d.Sync(ctx, rootKey)
	case !on && whole:
		if err := d.Delete(ctx, hashIndexOnKey); err != nil {
			return err
		}
		if err := d.Sync(ctx, hashIndexOnKey); err != nil {
			return err
		}
		if err := deletePrefix(ctx, d, hashIndexKey); err != nil {
			return fmt.Errorf("drop the hash index: %w", err)
		}
	}
	return nil
}

// buildHashIndex writes the index record of every stored message, from
// the message record keys alone (they name scope, timestamp and hash), in
// batches. Writing a record twice is harmless, so a build cut short is
// simply run again. It is how a store of an earlier format gets its
// index.
func buildHashIndex(ctx context.Context, d ds.Batching) error {
	b, err := d.Batch(ctx)
	if err != nil {
		return err
	}
	recs, err := listScopeRecords(ctx, d)
	if err != nil {
		return err
	}
	n := 0
	for _, rec := range recs {
		st := newScopeState(rec.scope)
		err = eachStoredKey(ctx, d, st, func(k reconcile.Key) error {
			if err := b.Put(ctx, indexKey(&k.Hash), appendIndexValue(nil, st.id, k.TS)); err != nil {
				return err
			}
			if n++; n%repairChunk == 0 {
				if err := b.Commit(ctx); err != nil {
					return err
				}
				if b, err = d.Batch(ctx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("build the hash index: %w", err)
		}
	}
	return b.Commit(ctx)
}
