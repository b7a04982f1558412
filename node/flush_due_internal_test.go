package node

import "testing"

// TestFlushDueWaitsLongerForManyScopes: one scope flushes at the
// configured count; keys over many scopes wait for 64 a scope, up to
// eight times the count. Keys a running flush took do not count towards
// asking for another, but do towards the backlog past which a commit
// flushes itself.
func TestFlushDueWaitsLongerForManyScopes(t *testing.T) {
	for _, c := range []struct {
		at, scopes, pending, taken int
		due, over                  bool
	}{
		{100, 1, 99, 0, false, false}, {100, 1, 100, 0, true, false},
		{50, 1, 50, 0, true, false}, // one scope: the count, even below 64
		{100, 2, 127, 0, false, false}, {100, 2, 128, 0, true, false},
		{100, 5, 319, 0, false, false}, {100, 5, 320, 0, true, false},
		{100, 100, 799, 0, false, false}, {100, 100, 800, 0, true, false}, // at most 8 × 100
		{100, 1, 150, 100, false, false}, {100, 1, 200, 100, true, false},
		{100, 1, 399, 300, false, false}, {100, 1, 400, 300, true, true}, // 4 × 100 wait
		{100, 100, 3200, 3200, false, true},
	} {
		s := &Store{cfg: storeConfig{flushAt: c.at}, dirty: make(map[*scopeState]struct{})}
		for range c.scopes {
			s.dirty[&scopeState{}] = struct{}{}
		}
		s.pendingN, s.takenN = c.pending, c.taken
		if due, over := s.flushDue(); due != c.due || over != c.over {
			t.Errorf("flush at %d, %d scopes, %d pending, %d taken: due %v over %v, want %v %v",
				c.at, c.scopes, c.pending, c.taken, due, over, c.due, c.over)
		}
	}
}
