package reconcile

import (
	"slices"

	"github.com/storesync/storesync/pb"
)

// A session ends in one of two ways. Normally the initiator's message
// asks for nothing more and the whole range is resolved. When the next
// message would ask for a reply beyond Params.MaxMessages, or the session
// has learned Params.MaxDiff hashes, the initiator ends it early: it
// sends the message it built without the items that ask for a reply, so
// that what the message delivers (hashes the responder lacks, and SKIP
// items telling it which of its hashes we lack) still arrives, and
// records the ranges of the items left out as unresolved. Nothing new
// goes on the wire: to the responder this is an ordinary last message.
// Each session makes progress (every reply resolves part of the
// difference, see budget.go) and what it learned is true, so a caller
// that transfers Result and starts another session converges.

// Range is the key range [Lo, Hi).
type Range struct {
	Lo, Hi Key
}

// Complete reports whether the session is over and resolved its whole
// range, so that Result is the whole difference. A session that ended
// early because it reached Params.MaxMessages or Params.MaxDiff is done
// but not complete; so is one whose responder left ranges unanswered.
func (s *Session) Complete() bool { return s.done && len(s.unresolved) == 0 }

// Unresolved returns, sorted and disjoint, the ranges in which a session
// that ended incomplete may not have learned the whole difference;
// outside them Result holds all of it. It returns nil for a complete
// session and for one not done. To finish the job the caller transfers
// what Result says and starts another session, over the session's range
// or, more cheaply, over [first Lo, last Hi) of these ranges.
func (s *Session) Unresolved() []Range {
	if !s.done || len(s.unresolved) == 0 {
		return nil
	}
	rs := slices.Clone(s.unresolved)
	slices.SortFunc(rs, func(a, b Range) int { return a.Lo.Compare(b.Lo) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.Lo.Compare(last.Hi) <= 0 {
			if last.Hi.Less(r.Hi) {
				last.Hi = r.Hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// finish ends a session whose last message asks for nothing. Sketches
// still open mean the responder left ranges unanswered.
func (s *Session) finish() {
	s.done = true
	for _, st := range s.sketches {
		s.unresolved = append(s.unresolved, Range{Lo: st.lo, Hi: st.hi})
	}
	clear(s.sketches)
	clear(s.wanted)
}

// cutShort turns the message being built into the session's last: items
// that ask for a reply are left out and their ranges recorded as
// unresolved; SKIP items and the hashes given stay.
func (s *Session) cutShort() {
	kept := s.out.items[:0]
	for _, it := range s.out.items {
		if it.mode == pb.Mode_SKIP {
			kept = append(kept, it)
			continue
		}
		s.unresolved = append(s.unresolved, Range{Lo: it.lo, Hi: it.hi})
	}
	s.out.items = kept
	s.finish()
}
