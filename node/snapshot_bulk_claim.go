package node

import (
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
		// Pending and flushing keys are in the count.
		if st.snap.Load().agg.Count > 0 || st.tree.Root().Count > 0 {
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

// releaseBulk undoes what claimBulk did, if the import's end has not:
// a kept scope's held keys go to the next flush.
func (s *Store) releaseBulk(mode bulkMode, st *scopeState) {
	switch mode {
	case newScope:
		s.addMu.Lock()
		delete(s.bulk, st.scope)
		s.addMu.Unlock()
	case emptyScope:
		st.wmu.Lock()
		defer st.wmu.Unlock()
		s.unhold(st)
	}
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
