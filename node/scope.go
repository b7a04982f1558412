package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// scopeState is a kept scope: its tree and its committed state.
type scopeState struct {
	scope reconcile.Scope
	id    [8]byte
	idHex string
	keys  scopeKeys
	tree  *reconcile.Tree

	// wmu serialises the scope's writers: commits, deletions, and a
	// flush's taking and releasing of its pending keys. It guards
	// pending, and flushing against changes.
	wmu sync.Mutex
	// pending holds the keys of messages committed but not yet in the
	// tree and not yet taken by a flush.
	pending pendingKeys
	// flushing holds the keys a flush took from pending and is
	// inserting into the tree: empty but while one runs. Only a flush,
	// holding flushMu and wmu, changes it; the flush reads it without
	// wmu meanwhile.
	flushing pendingKeys
	// bulk is set, under wmu, while a one-pass import builds the tree of
	// this kept scope (snapshot_bulk.go): flushes leave its pending keys
	// pending (held) and its tree alone.
	bulk bool
	// load is the bulk record of the catch-up that holds the scope
	// (catchup_load.go), nil when none does; under wmu. A commit that
	// adds a key below its live key writes it anew.
	load *bulkRecord
	// loading counts the messages the bulk load that holds the scope has
	// stored, which the scope's count leaves out until the load ends.
	loading atomic.Int64

	// snap is replaced, never modified, and only by a writer holding
	// wmu: each starts from its predecessor's snapshot, while readers
	// load it without any lock and always see one consistent state.
	snap atomic.Pointer[scopeSnap]
}

// heldOrFilled reports whether a bulk load holds st or st holds a
// message (pending and flushing keys are in the count): either way no
// bulk load may claim it. The caller holds st.wmu.
func (st *scopeState) heldOrFilled() bool {
	return st.bulk || st.snap.Load().agg.Count > 0 || st.tree.Root().Count > 0
}

// scopeSnap is a scope's state after a commit.
type scopeSnap struct {
	agg       reconcile.Aggregate // of every stored message: the tree's and the pending keys'
	newest    int64               // newest timestamp; 0 when empty
	lastAdded time.Time           // last Put that added something
}

// ScopeStats describes a kept scope at one moment.
type ScopeStats struct {
	Scope reconcile.Scope
	// Count is the number of messages stored.
	Count uint64
	// Root is the fingerprint of the whole scope: the
	// reconcile.Aggregate.Fingerprint of its messages' count and sum,
	// which its tree's root holds once it is flushed. Two stores with the
	// same messages have the same Root.
	Root reconcile.Fingerprint
	// Newest is the largest timestamp stored, 0 when the scope is empty.
	Newest int64
	// LastAdded is when a Put last added a message to the scope since
	// the store was opened; zero if none did.
	LastAdded time.Time
	// Loading is how many messages a bulk load of the scope (a catch-up
	// or an import into it while it held no message) has stored so far.
	// Count, Root and the scope's tree leave them out until the load
	// ends; messages that reach the scope meanwhile by other ways are in
	// Count.
	Loading uint64
}

// AddScope makes the store keep a scope, persistently: the scope is
// loaded again by every later OpenStore. Adding a kept scope does nothing.
// Both topics must be non-empty. A scope an import is restoring into a
// store that did not keep it (Import) is kept once the import ends; until
// then AddScope fails with ErrImportRunning.
func (s *Store) AddScope(ctx context.Context, sc reconcile.Scope) error {
	if sc.PubsubTopic == "" || sc.ContentTopic == "" {
		return fmt.Errorf("add scope %q: both topics must be set", sc)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.addMu.Lock()
	defer s.addMu.Unlock()
	if _, ok := s.state(sc); ok {
		return nil
	}
	if _, ok := s.bulk[sc]; ok {
		return fmt.Errorf("add scope %s: %w", sc, ErrImportRunning)
	}
	id := sc.ID()
	s.mu.RLock()
	other, clash := s.byID[id]
	s.mu.RUnlock()
	if clash {
		// Keys are derived from the ID, so two scopes sharing one would
		// share a tree.
		return fmt.Errorf("add scope %s: its ID %x is that of kept scope %s", sc, id, other.scope)
	}
	rec := scopeRecord{scope: sc}
	st, err := openScope(ctx, s.d, rec, s.cfg)
	if err != nil {
		return fmt.Errorf("add scope %s: %w", sc, err)
	}
	if st.tree.Root() != rec.agg {
		// Messages are only written once the record exists, so a tree
		// without a record means the datastore was altered from outside.
		return fmt.Errorf("%w: scope %s has a tree but no record", ErrCorrupt, sc)
	}
	key := scopeRecordKey(st.idHex)
	if err := s.d.Put(ctx, key, rec.encode()); err != nil {
		return fmt.Errorf("add scope %s: %w", sc, err)
	}
	if err := s.d.Sync(ctx, key); err != nil {
		return fmt.Errorf("add scope %s: %w", sc, err)
	}
	s.mu.Lock()
	s.scopes[sc], s.byID[id] = st, st
	s.mu.Unlock()
	return nil
}

// newScopeState returns the state of sc with its names, and no tree yet.
func newScopeState(sc reconcile.Scope) *scopeState {
	st := &scopeState{scope: sc, id: sc.ID()}
	st.idHex = scopeIDHex(st.id)
	st.keys = newScopeKeys(st.idHex)
	return st
}

// openScope opens the tree of a recorded scope. It does not check the tree
// against the record.
func openScope(ctx context.Context, d ds.Datastore, rec scopeRecord, cfg storeConfig) (*scopeState, error) {
	st := newScopeState(rec.scope)
	t, err := reconcile.Open(ctx, d, treeKey(st.idHex), cfg.treeOpts...)
	if errors.Is(err, reconcile.ErrCorrupt) {
		return nil, fmt.Errorf("%w: scope %s: %w", ErrCorrupt, st.scope, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open tree: %w", err)
	}
	st.tree = t
	snap := &scopeSnap{agg: rec.agg}
	last, ok, err := t.Last(ctx, reconcile.Key{}, reconcile.End)
	if err != nil {
		return nil, fmt.Errorf("read newest key: %w", err)
	}
	if ok {
		snap.newest = int64(last.TS)
	}
	st.snap.Store(snap)
	return st, nil
}

// Scopes returns the kept scopes sorted by their String.
func (s *Store) Scopes() []reconcile.Scope {
	s.mu.RLock()
	out := make([]reconcile.Scope, 0, len(s.scopes))
	for sc := range s.scopes {
		out = append(out, sc)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b reconcile.Scope) int {
		return cmp.Compare(a.String(), b.String())
	})
	return out
}

// ScopeByID returns the kept scope whose reconcile.Scope.ID is id.
func (s *Store) ScopeByID(id [8]byte) (reconcile.Scope, bool) {
	st, ok := s.stateByID(id)
	if !ok {
		return reconcile.Scope{}, false
	}
	return st.scope, true
}

// stateByID returns the state of the kept scope whose ID is id.
func (s *Store) stateByID(id [8]byte) (*scopeState, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.byID[id]
	return st, ok
}

// Set returns the key set of a kept scope (its tree) for reconciliation,
// with every message committed so far in it (see Tree). It stays valid
// while the store is open.
func (s *Store) Set(sc reconcile.Scope) (reconcile.Set, bool) {
	t, ok := s.Tree(sc)
	if !ok {
		return nil, false
	}
	return t, true
}

// Tree returns the tree of a kept scope, first flushing the keys that
// commits left pending (journal.go), so that the tree holds every message
// committed before the call. Callers may read it; writing to it other
// than through the Store would make the tree disagree with the scope's
// record, which the next OpenStore reports as ErrCorrupt.
func (s *Store) Tree(sc reconcile.Scope) (*reconcile.Tree, bool) {
	st, ok := s.state(sc)
	if !ok {
		return nil, false
	}
	st.wmu.Lock()
	pending := st.pending.len() + st.flushing.len()
	st.wmu.Unlock()
	if pending > 0 {
		if err := s.flush(context.Background()); err != nil {
			log.Warn("flush before reading a tree failed", "scope", sc, "err", err)
		}
	}
	return st.tree, true
}

// Stats returns a kept scope's statistics. All fields come from the same
// committed state.
func (s *Store) Stats(sc reconcile.Scope) (ScopeStats, bool) {
	st, ok := s.state(sc)
	if !ok {
		return ScopeStats{}, false
	}
	snap := st.snap.Load()
	return ScopeStats{
		Scope:     sc,
		Count:     snap.agg.Count,
		Root:      snap.agg.Fingerprint(),
		Newest:    snap.newest,
		LastAdded: snap.lastAdded,
		Loading:   uint64(max(st.loading.Load(), 0)),
	}, true
}
