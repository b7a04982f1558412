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
	set Set
	p   Params
}

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
func (r *Responder) Respond(ctx context.Context, in []*pb.ReconcileFrame) (out []*pb.ReconcileFrame, learned Diff, reply bool, err error) {
	m, err := decode(in, &r.p.Limits)
	if err != nil {
		return nil, Diff{}, false, err
	}
	s := newSide(r.set, &r.p, false)
	s.reset()
	s.learnNeed(m.youLack)
	for i := range m.items {
		it := &m.items[i]
		switch it.mode {
		case pb.Mode_SKIP:
			err = s.onInfo(ctx, it)
		case pb.Mode_FINGERPRINT:
			err = s.onFingerprint(ctx, it)
		case pb.Mode_KEYLIST:
			err = s.onKeyList(ctx, it)
		case pb.Mode_MORE_CELLS:
			err = r.onMoreCells(ctx, &s, it)
		case pb.Mode_WANT:
			err = r.onWant(ctx, &s, it)
		default:
			err = fmt.Errorf("%w: %v sent to the responder", ErrUnexpected, it.mode)
		}
		if err != nil {
			return nil, Diff{}, false, err
		}
	}
	if !m.needsReply() {
		return nil, s.diff(), false, nil
	}
	return encode(&s.out, r.p.FrameSize), s.diff(), true, nil
}

// onMoreCells sends the cells of our sketch of a range that the
// initiator asks for.
func (r *Responder) onMoreCells(ctx context.Context, s *side, it *rangeItem) error {
	if it.cellCount > uint64(r.p.maxRangeCells()) {
		return fmt.Errorf("%w: %d cells asked for one range", ErrTooLarge, it.cellCount)
	}
	mine, err := r.set.Aggregate(ctx, it.lo, it.hi)
	if err != nil {
		return err
	}
	return s.sendSketch(ctx, it.lo, it.hi, mine, it.firstCell, it.cellCount)
}

// onWant gives the initiator the full hashes of the keys it decoded from
// our sketch as lacking.
func (r *Responder) onWant(ctx context.Context, s *side, it *rangeItem) error {
	keys, err := keysWithIDs(ctx, r.set, it.lo, it.hi, it.ids)
	if err != nil {
		return err
	}
	s.give(keys)
	return nil
}
