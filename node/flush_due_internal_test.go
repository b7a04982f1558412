package node

import "testing"

// TestFlushDueWaitsLongerForManyScopes: one scope flushes at the
// configured count; keys over many scopes wait for 64 a scope, up to
// eight times the count.
func TestFlushDueWaitsLongerForManyScopes(t *testing.T) {
	for _, c := range []struct {
		scopes, pending int
		due             bool
	}{
		{1, 99, false}, {1, 100, true},
		{2, 127, false}, {2, 128, true},
		{5, 319, false}, {5, 320, true},
		{100, 799, false}, {100, 800, true}, // capped at 8 × 100
	} {
		s := &Store{cfg: storeConfig{flushAt: 100}, dirty: make(map[*scopeState]struct{})}
		for range c.scopes {
			s.dirty[&scopeState{}] = struct{}{}
		}
		s.pendingN = c.pending
		if got := s.flushDue(); got != c.due {
			t.Errorf("%d scopes, %d pending: due %v, want %v", c.scopes, c.pending, got, c.due)
		}
	}
}
