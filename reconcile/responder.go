package reconcile

import (
	"context"
	"fmt"

	"github.com/storesync/storesync/pb"
)

// Responder answers reconciliation messages for one set. It keeps no
// state between messages: every message names its key ranges, and the
// answer comes from the set as it is now, so it needs no snapshot and a
// write during a session shows up at worst as a spurious difference.
// Safe for concurrent use if the Set is.
type Responder struct {
	set     Set
	p       Params
	noMatch bool // WithoutMatch
}

// WithoutMatch makes MATCH items break the protocol, as they do for a
// peer that speaks sync 3.0, which does not have them.
func (r *Responder) WithoutMatch() { r.noMatch = true }

// NewResponder returns a responder over set.
func NewResponder(set Set, p Params) (*Responder, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Responder{set: set, p: p}, nil
}

// Respond handles one message of the initiator. It returns the reply and
// what the message taught the responder. When reply is false the message
// was the initiator's last and needs no answer; out is then nil.
//
// The reply stays within the limits of Params, which the initiator is
// assumed to share, whatever the message asks and however large the set:
// a range that cannot be resolved within them is partly resolved and
// handed back (see budget.go). Only a message beyond those limits, which
// no honest initiator sends, fails, with ErrTooLarge.
func (r *Responder) Respond(ctx context.Context, in []*pb.ReconcileFrame) (out []*pb.ReconcileFrame, learned Diff, reply bool, err error) {
	m, err := decode(in, &r.p.Limits)
	if err != nil {
		return nil, Diff{}, false, err
	}
	s := newSide(r.set, &r.p, false)
	s.reset()
	s.hold = reserve(m.items)
	// What the request asks for by name (cells, keys for IDs) and a
	// share in proportion to its size for the rest.
	s.left = s.left.capped(replyAllowance(&r.p, framesBytes(in)) + s.hold.weight())
	s.learnNeed(m.youLack)
	own := func(it *rangeItem) error {
		switch it.mode {
		case pb.Mode_MORE_CELLS:
			return r.onMoreCells(ctx, &s, it)
		case pb.Mode_WANT:
			return r.onWant(ctx, &s, it)
		case pb.Mode_MATCH:
			return r.onMatch(ctx, &s, it)
		}
		return fmt.Errorf("%w: %v sent to the responder", ErrUnexpected, it.mode)
	}
	inRun := false
	for i := range m.items {
		it := &m.items[i]
		switch it.mode {
		case pb.Mode_MORE_CELLS, pb.Mode_WANT, pb.Mode_MATCH:
			if inRun {
				if err := s.endRun(ctx); err != nil {
					return nil, Diff{}, false, err
				}
				inRun = false
			}
		case pb.Mode_FINGERPRINT, pb.Mode_KEYLIST:
			inRun = true
		}
		if err := s.onItem(ctx, it, own); err != nil {
			return nil, Diff{}, false, err
		}
	}
	if inRun {
		if err := s.endRun(ctx); err != nil {
			return nil, Diff{}, false, err
		}
	}
	if !m.needsReply() {
		return nil, s.diff(), false, nil
	}
	return encode(&s.out, r.p.FrameSize), s.diff(), true, nil
}

// reserve returns what the reply must keep for items that must be
// answered in full: the cells asked for by MORE_CELLS items (the
// initiator's sketch state expects exactly them), the hashes asked for by
// WANT items and the keys by MATCH items, an item per MORE_CELLS, WANT
// and MATCH, and an item per run of FINGERPRINT and KEYLIST items for the
// hand-back that may close it. A run ends at a MORE_CELLS, WANT or MATCH
// item, so that a hand-back never covers a range the
// initiator keeps state for. The limits the message was decoded under
// bound all of it: cells and IDs by the same limits as the reply's, and
// items too, as every reserved item stands for at least one item of the
// message.
func reserve(items []rangeItem) budget {
	var b budget
	inRun := false
	for i := range items {
		it := &items[i]
		switch it.mode {
		case pb.Mode_MORE_CELLS:
			b.items++
			b.cells += int(it.cellCount)
			inRun = false
		case pb.Mode_WANT:
			b.items++
			b.lack += len(it.ids)
			inRun = false
		case pb.Mode_MATCH:
			b.items++
			b.listed += int(it.count)
			inRun = false
		case pb.Mode_FINGERPRINT, pb.Mode_KEYLIST:
			if !inRun {
				b.items++
				inRun = true
			}
		}
	}
	return b
}
