package node

import (
	"context"
	"fmt"

	"github.com/storesync/storesync/reconcile"
)

// bulkMode says how an import stores its file.
type bulkMode int

const (
	// twoPasses: the scope holds messages, and the import verifies the
	// whole file before storing it as Put does.
	twoPasses bulkMode = iota
	// newScope: a bulk import of a scope the store does not keep.
	newScope
	// emptyScope: a bulk import of a kept scope with no message, whose
	// new keys it holds pending until it ends.
	emptyScope
)

// claimBulk decides how an import of sc stores its file, and claims the
// scope for a bulk import: it marks a scope not kept, which AddScope
// then refuses, or sets an empty kept scope's bulk flag. It returns the
// scope's state for a bulk import.
func (s *Store) claimBulk(sc reconcile.Scope) (bulkMode, *scopeState, error) {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	if st, ok := s.state(sc); ok {
		st.wmu.Lock()
		defer st.wmu.Unlock()
		if st.heldOrFilled() {
			return twoPasses, nil, nil
		}
		st.bulk = true
		return emptyScope, st, nil
	}
	s.mu.RLock()
	other, clash := s.byID[sc.ID()]
	s.mu.RUnlock()
	if clash {
		return twoPasses, nil, fmt.Errorf("its ID %x is that of kept scope %s", sc.ID(), other.scope)
	}
	s.bulk[sc] = struct{}{}
	return newScope, newScopeState(sc), nil
}

// releaseBulk undoes what claimBulk did, if the import's end has not
// (recoverHeld).
func (s *Store) releaseBulk(ctx context.Context, mode bulkMode, st *scopeState) error {
	switch mode {
	case newScope:
		s.addMu.Lock()
		delete(s.bulk, st.scope)
		s.addMu.Unlock()
	case emptyScope:
		return s.recoverHeld(ctx, st)
	}
	return nil
}

// recoverHeld ends the hold of a kept scope whose bulk load did not end
// (endBulk failed, or never ran): the load's records that the scope's
// tree lacks go pending with the held keys, as a replay of the journal
// makes them (replayScope), so that the scope shows them now rather than
// after the bulk record's rebuild at the next open, and the flusher is
// asked for them. Nothing to do once the load has ended.
func (s *Store) recoverHeld(ctx context.Context, st *scopeState) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	st.load = nil
	if !st.bulk {
		return nil
	}
	s.unhold(st)
	everything := []keyRange{{reconcile.Key{}, reconcile.End}}
	if err := s.replayScope(context.WithoutCancel(ctx), st, everything); err != nil {
		return fmt.Errorf("scope %s: take up what its load stored: %w", st.scope, err)
	}
	st.loading.Store(0)
	s.kickFlusher()
	return nil
}

// unhold ends a kept scope's bulk flag: its pending keys are no longer
// held, and the flusher is asked for them. The caller holds st.wmu.
func (s *Store) unhold(st *scopeState) {
	if !st.bulk {
		return
	}
	st.bulk = false
	s.jmu.Lock()
	s.heldN -= st.pending.len()
	s.jmu.Unlock()
	s.kickFlusher()
}
