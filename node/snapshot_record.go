package node

import (
	"context"
	"errors"
	"fmt"
	"sync"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

// importsKey holds the import records: a scope's record is the
// snapshot.State (MarshalBinary) after the last batch an import of the
// scope stored, written in that batch's commit, and present only while an
// import is unfinished.
var importsKey = resumeKey.ChildString("import")

// importRecordKey returns the key of a scope's import record.
func importRecordKey(idHex string) ds.Key { return importsKey.ChildString(idHex) }

// writeImportRecord returns the extra write of a commit that stores a
// batch: the state after it.
func writeImportRecord(st *scopeState, state []byte) writeFunc {
	key := importRecordKey(st.idHex)
	return func(ctx context.Context, w ds.Write) error { return w.Put(ctx, key, state) }
}

// resumeImport moves r to the state the scope's import record names, if
// there is a record and it is one of the states a reader of r's file
// passed through (seen, from the verification pass): a record damaged on
// disk, or of another file, is never trusted. It reports whether a
// record exists; one not trusted is left for the import to replace,
// since starting over is always safe.
func (s *Store) resumeImport(ctx context.Context, st *scopeState, r *snapshot.Reader, seen map[string]bool) (bool, error) {
	b, err := s.d.Get(ctx, importRecordKey(st.idHex))
	if errors.Is(err, ds.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read import record: %w", err)
	}
	if !seen[string(b)] {
		log.Info("import record is not a state of this file; starting over", "scope", st.scope)
		return true, nil
	}
	var state snapshot.State
	if err := state.UnmarshalBinary(b); err != nil {
		log.Warn("import record does not decode; starting over", "scope", st.scope, "err", err)
		return true, nil
	}
	if err := r.Resume(state); err != nil {
		log.Info("import record is of another file; starting over", "scope", st.scope, "err", err)
		return true, nil
	}
	return true, nil
}

// deleteImportRecord deletes the scope's import record.
func (s *Store) deleteImportRecord(ctx context.Context, st *scopeState) error {
	if err := s.d.Delete(ctx, importRecordKey(st.idHex)); err != nil {
		return fmt.Errorf("delete import record: %w", err)
	}
	return nil
}

// importing holds the scopes being imported, per store. A mutex guards
// the small map; nothing is held across I/O.
var importing = struct {
	sync.Mutex
	m map[importKey]struct{}
}{m: make(map[importKey]struct{})}

type importKey struct {
	s  *Store
	sc reconcile.Scope
}

// lockImport claims the import of sc into s, or fails with
// ErrImportRunning; the caller calls the returned func when done.
func lockImport(s *Store, sc reconcile.Scope) (func(), error) {
	k := importKey{s, sc}
	importing.Lock()
	defer importing.Unlock()
	if _, ok := importing.m[k]; ok {
		return nil, ErrImportRunning
	}
	importing.m[k] = struct{}{}
	return func() {
		importing.Lock()
		delete(importing.m, k)
		importing.Unlock()
	}, nil
}
