package reconcile

import "context"

// maxStuckScan bounds the keys of its own that a session reads, over all
// its ranges, to free stuck sketches (freeStuck): as many as a reply may
// read for cells past the memos (maxReplyScan), so that a responder
// whose sketches all look stuck buys no more than that.
const maxStuckScan = maxReplyScan

// freeStuck decodes a range's sketch whose peel failed with few cells
// left that are not empty, the mark of a remote element and a local one
// that cancel in every cell the sketch has so far (about one part in a
// thousand has such a pair, or a cycle of them): more cells part them
// only slowly, one round trip at a time. Our elements among them are
// keys of the range that fall in those cells alone: reading the range
// finds them, and taking them out frees the rest (peeler.assist). It
// reports whether the sketch decoded.
func (s *Session) freeStuck(ctx context.Context, st *sketchState) (bool, error) {
	n := st.peel.residue()
	if n == 0 || 2*n > st.peel.cells() || st.mine.Count > uint64(maxStuckScan-s.stuckScanned) {
		return false, nil
	}
	var found []ShortID
	complete := true
	err := s.set.Iterate(ctx, st.lo, st.hi, func(k Key) error {
		if s.stuckScanned++; s.stuckScanned > maxStuckScan {
			complete = false
			return errStop
		}
		id := keyID(&k)
		if _, done := st.peel.seen[id]; done || !st.peel.frees(id) {
			return nil
		}
		// A few elements free a stuck sketch; more mean a sketch that
		// is not stuck as it seems (or a forged one).
		if found = append(found, id); len(found) > n {
			complete = false
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return false, err
	}
	if !complete || len(found) == 0 {
		return false, nil
	}
	return st.peel.assist(found, nil), nil
}
