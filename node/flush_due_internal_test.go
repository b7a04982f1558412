package node

import "testing"

// TestFlushDueWaitsLongerForManyScopes: one scope flushes at the
// configured count; keys over many scopes wait for 64 a scope, up to
// eight times the count.
func TestFlushDueWaitsLongerForManyScopes(t *testing.T) {
	for _, c := range []struct {
		at, scopes, pending int
		due                 bool
	}{
		{100, 1, 99, false}, {100, 1, 100, true},
		{50, 1, 50, true}, // one scope: the count, even below 64
		{100, 2, 127, false}, {100, 2, 128, true},
		{100, 5, 319, false}, {100, 5, 320, true},
		{100, 100, 799, false}, {100, 100, 800, true}, // at most 8 × 100
	} {
		s := &Store{cfg: storeConfig{flushAt: c.at}, dirty: make(map[*scopeState]struct{})}
		for range c.scopes {
			s.dirty[&scopeState{}] = struct{}{}
		}
		s.pendingN = c.pending
		if got := s.flushDue(); got != c.due {
			t.Errorf("flush at %d, %d scopes, %d pending: due %v, want %v", c.at, c.scopes, c.pending, got, c.due)
		}
	}
}
