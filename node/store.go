package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// Store keeps the messages of the scopes a node keeps, each scope with its
// prolly tree, in one go-datastore. A message and its tree entry commit in
// one batch. Safe for concurrent use.
//
// A mutex guards only the map of kept scopes. Writes to one scope are
// serialised by its tree (a reconcile.Txn holds the tree's write lock from
// Begin to Commit), so writes to different scopes proceed in parallel, and
// reads of messages go to the datastore without any lock of the store's.
type Store struct {
	d    ds.Batching
	cfg  storeConfig
	subs hub

	// addMu serialises AddScope, which is rare and does I/O, so that mu
	// is never held across I/O. It guards bulk, the scopes a bulk import
	// is restoring (snapshot_bulk.go), which AddScope refuses.
	addMu sync.Mutex
	bulk  map[reconcile.Scope]struct{}

	mu     sync.RWMutex
	scopes map[reconcile.Scope]*scopeState
	byID   map[[8]byte]*scopeState
	closed bool

	// calls counts the calls in progress that use d; Close waits for them
	// so that the caller may close d as soon as Close returns.
	calls sync.WaitGroup

	// The journal (journal.go). Commits hold commitMu shared from their
	// journal record to their pending keys; a flush holds it alone while
	// it takes the dirty scopes, and flushMu throughout. jmu guards the
	// rest, a small leaf state.
	commitMu sync.RWMutex
	flushMu  sync.Mutex
	jmu      sync.Mutex
	seq      uint64                   // the next journal record's number
	jfrom    uint64                   // the first not flushed
	dirty    map[*scopeState]struct{} // scopes with pending keys
	pendingN int                      // keys not yet in the trees, taken ones included
	takenN   int                      // of them, those the running flush took
	heldN    int                      // of them, those of scopes a bulk import holds
	oldest   time.Time                // when the first of them was committed

	stopFlusher context.CancelFunc
	flusherDone chan struct{}
	// kick asks the background flusher for a flush now.
	kick chan struct{}
}

// OpenStore opens the store kept in d. It loads the scopes recorded in d,
// opens their trees, and proves that each tree agrees with the scope's
// recorded message count and sum: a cheap O(1) check against the root
// aggregate, plus reconcile.Tree.Verify and a count of the stored messages
// when WithVerifyOnOpen(true). A disagreement is an error wrapping
// ErrCorrupt, never silently repaired: Repair rebuilds the trees and
// records from the messages.
//
// d must apply a batch atomically: all of it or none, whatever happens to
// the process or the machine (OpenLevelDB's does; go-datastore does not
// promise it). Over a datastore that may apply a batch in part, open
// with WithVerifyOnOpen(true) after a crash: a batch applied in part then
// fails the open with ErrCorrupt, and Repair brings the store back.
//
// d must be safe for concurrent use and stays the caller's: Close does not
// close it.
func OpenStore(ctx context.Context, d ds.Batching, opts ...StoreOption) (*Store, error) {
	s, err := openStore(ctx, d, opts)
	if errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("%w; Repair (storesync repair) rebuilds the trees and records from the messages", err)
	}
	return s, err
}

func openStore(ctx context.Context, d ds.Batching, opts []StoreOption) (*Store, error) {
	cfg := defaultStoreConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	// Trees are opened one per scope; trying the tree options once on an
	// empty datastore makes a bad option fail here even with no scope kept.
	if _, err := reconcile.Open(ctx, ds.NewNullDatastore(), treesKey, cfg.treeOpts...); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := checkFormat(ctx, d); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := syncHashIndex(ctx, d, cfg.hashIndex); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{
		d:      d,
		cfg:    cfg,
		scopes: make(map[reconcile.Scope]*scopeState),
		byID:   make(map[[8]byte]*scopeState),
		dirty:  make(map[*scopeState]struct{}),
		bulk:   make(map[reconcile.Scope]struct{}),
		kick:   make(chan struct{}, 1),
	}
	s.subs.init()
	// An import a crash cut short keeps what it stored.
	if err := finishBulkLoads(ctx, d); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	states, err := loadScopes(ctx, d, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	for _, st := range states {
		s.scopes[st.scope], s.byID[st.id] = st, st
	}
	// Commits a crash left in the journal go into the trees now, so that
	// trees, records and messages agree again before anything reads them.
	if err := s.replayJournal(ctx); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.flush(ctx); err != nil {
		return nil, fmt.Errorf("open store: replay the journal: %w", err)
	}
	if cfg.verify {
		for _, st := range states {
			if err := prove(ctx, d, st, st.snap.Load().agg, true); err != nil {
				return nil, fmt.Errorf("open store: %w", err)
			}
		}
	}
	s.goFlusher()
	return s, nil
}

// goFlusher flushes the journal in the background when a commit asks
// (kickFlusher) and once its oldest commit is flushEvery old, so that a
// replay after a crash stays short and the trees on disk stay close to
// the messages.
func (s *Store) goFlusher() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopFlusher, s.flusherDone = cancel, make(chan struct{})
	go func() {
		defer close(s.flusherDone)
		t := time.NewTicker(s.cfg.flushEvery / 4)
		defer t.Stop()
		for {
			kicked := false
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-s.kick:
				kicked = true
			}
			s.jmu.Lock()
			due := s.pendingN > s.heldN && (kicked || s.cfg.now().Sub(s.oldest) >= s.cfg.flushEvery)
			s.jmu.Unlock()
			if due && s.enter() == nil {
				if err := s.flush(ctx); err != nil && ctx.Err() == nil {
					log.Warn("flushing the journal failed", "err", err)
				}
				s.calls.Done()
			}
		}
	}()
}

// kickFlusher asks the background flusher for a flush, without waiting.
func (s *Store) kickFlusher() {
	select {
	case s.kick <- struct{}{}:
	default: // one is asked for already
	}
}

// Close ends every subscription and waits for the calls in progress to
// return; later calls that touch the datastore fail with ErrClosed. It
// does not close the datastore, which the caller owns. Close is
// idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return nil
	}
	s.stopFlusher()
	<-s.flusherDone
	s.calls.Wait()
	s.subs.close()
	// A clean close leaves no journal: the next open has nothing to
	// replay.
	if err := s.flush(context.Background()); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// enter registers a call that uses the datastore; the caller must call
// s.calls.Done when it returns.
func (s *Store) enter() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.calls.Add(1)
	return nil
}

// state returns a kept scope's state.
func (s *Store) state(sc reconcile.Scope) (*scopeState, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.scopes[sc]
	return st, ok
}

// scopeCount returns how many scopes the store keeps.
func (s *Store) scopeCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.scopes)
}

// enterScope is enter followed by state, failing with ErrUnknownScope.
func (s *Store) enterScope(sc reconcile.Scope) (*scopeState, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	st, ok := s.state(sc)
	if !ok {
		s.calls.Done()
		return nil, fmt.Errorf("%w: %s", ErrUnknownScope, sc)
	}
	return st, nil
}
