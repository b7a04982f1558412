package reconcile

import (
	"context"
	"fmt"
	"math"

	"github.com/storesync/storesync/pb"
)

// A reply must stay within the limits its receiver enforces (decode),
// whatever the message it answers asked for and however large the sets
// are. A side therefore builds each reply against a budget, in the units
// decode counts, and a range it cannot resolve within the budget is not
// an error: it resolves what fits and hands the rest of the range back,
// as a FINGERPRINT item of its own set over the unresolved part, which
// the peer answers in the next round like any other. Both sides assume
// the peer enforces the same Limits as they do.
//
// Hand-backs that follow one another in key order, with nothing resolved
// between them, merge into one item (the tail), so that a message full
// of ranges that cannot be served shrinks to one item instead of failing
// or growing. One item is held back for the tail so that it can always
// be sent: a range is never dropped.

// budget counts what a reply may still carry: range items, sketch cells
// (sent or asked for), short IDs (WANT and SKIP ids), listed hashes
// (KEYLIST) and you_lack hashes. decode limits the last three separately,
// each to Limits.MaxIDs. A budget of what a reply may carry also has
// bytes: what its cells, IDs and hashes together may take on the wire
// (weight), which bounds a responder's reply by its request; in a budget
// of what something costs, bytes is unused and the weight counts.
type budget struct {
	items, cells, ids, listed, lack int
	bytes                           int64
}

func fullBudget(l *Limits) budget {
	return budget{items: l.MaxItems, cells: l.MaxCells, ids: l.MaxIDs, listed: l.MaxIDs, lack: l.MaxIDs,
		bytes: math.MaxInt64 / 2}
}

// weight returns what b's cells, IDs and hashes take on the wire, at most.
func (b budget) weight() int64 {
	return int64(b.cells)*cellSize + int64(b.ids)*8 + int64(b.listed+b.lack)*KeyWireMax
}

// replyFactor and the frame size bound a responder's reply by what the
// message it answers asked: beyond the cells and keys it asks for by
// name (MORE_CELLS, WANT), the reply's cells, IDs and hashes take at most
// replyFactor times that message's bytes, or one frame, whichever is
// more. A few bytes buy at most a frame; a range the reply has no room
// for is handed back, as when the receiver's limits are met, so that no
// ceiling follows: a session that runs out of messages ends incomplete,
// and the next goes on.
const replyFactor = 16

// replyAllowance returns the bytes a reply to a message of reqBytes may
// carry in cells, IDs and hashes, beyond what it asked for by name.
func replyAllowance(p *Params, reqBytes int64) int64 {
	return min(max(int64(p.FrameSize), replyFactor*reqBytes), messageAllowance(p))
}

// messageFrames bounds every message a side builds: its cells, IDs and
// hashes take at most this many frames, beyond what the peer asked for
// by name, and a range with no room left is handed back (see above). A
// receiver holds a turn's frames in memory its resource manager grants
// as they arrive; this keeps an honest message to a few frames a scope,
// well within what a libp2p stream may hold by default (16 MiB).
const messageFrames = 4

// messageAllowance returns the bytes any message may carry in cells, IDs
// and hashes, beyond what the peer asked for by name.
func messageAllowance(p *Params) int64 { return messageFrames * int64(p.FrameSize) }

// capped returns b with at most bytes of cells, IDs and hashes. Items are
// not capped: a reply needs one for every range it hands back, and the
// request's own items bound those.
func (b budget) capped(bytes int64) budget {
	b.bytes = min(b.bytes, bytes)
	return b
}

// minus returns capacity b less cost o.
func (b budget) minus(o budget) budget {
	return budget{items: b.items - o.items, cells: b.cells - o.cells, ids: b.ids - o.ids,
		listed: b.listed - o.listed, lack: b.lack - o.lack, bytes: b.bytes - o.weight()}
}

// plus returns the sum of two costs.
func (b budget) plus(o budget) budget {
	return budget{items: b.items + o.items, cells: b.cells + o.cells, ids: b.ids + o.ids,
		listed: b.listed + o.listed, lack: b.lack + o.lack}
}

// covers reports whether capacity b has room for cost o.
func (b budget) covers(o budget) bool {
	return o.items <= b.items && o.cells <= b.cells && o.ids <= b.ids && o.listed <= b.listed && o.lack <= b.lack &&
		o.weight() <= b.bytes
}

// costOf returns what an item takes from a reply's budget, as decode
// counts it.
func costOf(it *rangeItem) budget {
	return budget{items: 1, cells: len(it.cells) + len(it.counts) + int(it.cellCount), ids: len(it.ids), listed: len(it.keys),
		lack: len(it.answers)}
}

// errOverBudget reports a reply that would break its own budget: a bug,
// never the peer's doing, but refused rather than sent.
var errOverBudget = fmt.Errorf("%w: the reply would exceed the receiver's limits", ErrTooLarge)

// room returns what the task being handled may use: what is left, less
// what is held for tasks after it and, while a tail is open, the item
// that sends the tail before anything else can be sent.
func (s *side) room() budget {
	r := s.left.minus(s.hold)
	if s.tailOpen {
		r.items--
	}
	return r.clipped()
}

// clipped returns b with each of its cells, IDs and hashes no more than
// its bytes allow of that alone, so that a task that sizes what it sends
// by one of them stays within the bytes too.
func (b budget) clipped() budget {
	bytes := max(b.bytes, 0)
	b.cells = min(b.cells, int(bytes/cellSize))
	b.ids = min(b.ids, int(bytes/8))
	b.listed = min(b.listed, int(bytes/KeyWireMax))
	b.lack = min(b.lack, int(bytes/KeyWireMax))
	return b
}

// use takes b from the reply for what the current task sends, sending
// the open tail first so that the reply stays in key order.
func (s *side) use(ctx context.Context, b budget) error {
	if !s.room().covers(b) {
		return errOverBudget
	}
	if s.tailOpen {
		if err := s.closeTail(ctx); err != nil {
			return err
		}
	}
	s.left = s.left.minus(b)
	return nil
}

// handBack leaves [lo, hi) for the peer to answer in the next round. It
// costs nothing now: it joins the tail, whose item is held in reserve.
// Ranges handed back must come in key order.
func (s *side) handBack(lo, hi Key) {
	if s.tailOpen {
		s.tail.Hi = hi
		return
	}
	s.tail, s.tailOpen = Range{Lo: lo, Hi: hi}, true
}

// settle is called by a task that resolved its range without sending
// anything (what it learned stays with this side and the peer): the
// tail is sent before it if there is room, so that a later hand-back
// does not take the resolved range back into play.
func (s *side) settle(ctx context.Context) error {
	if !s.tailOpen || s.left.items-s.hold.items < 1 {
		return nil
	}
	return s.closeTail(ctx)
}

// closeTail sends the tail as a FINGERPRINT of our keys in it, with our
// newest timestamp so that the peer may run the prefix probe.
func (s *side) closeTail(ctx context.Context) error {
	s.tailOpen = false
	if s.left.items < 1 {
		return errOverBudget
	}
	it, err := s.fingerprintItem(ctx, s.tail.Lo, s.tail.Hi, true)
	if err != nil {
		return err
	}
	s.left.items--
	s.out.items = append(s.out.items, it)
	return nil
}

// endRun sends the open tail, if any, with the item held for it, and
// releases that item. A run is a stretch of tasks whose hand-backs may
// merge; see Responder.Respond.
func (s *side) endRun(ctx context.Context) error {
	s.hold.items--
	if !s.tailOpen {
		return nil
	}
	return s.closeTail(ctx)
}

// fingerprintItem returns a FINGERPRINT item of our keys in [lo, hi),
// with our newest timestamp there when withLast is set and we hold any.
func (s *side) fingerprintItem(ctx context.Context, lo, hi Key, withLast bool) (rangeItem, error) {
	agg, err := s.set.Aggregate(ctx, lo, hi)
	if err != nil {
		return rangeItem{}, err
	}
	it := rangeItem{lo: lo, hi: hi, mode: pb.Mode_FINGERPRINT, fp: agg.Fingerprint(), count: agg.Count}
	if withLast && agg.Count > 0 {
		last, ok, err := s.set.Last(ctx, lo, hi)
		if err != nil {
			return rangeItem{}, err
		}
		if ok {
			it.lastTS = last.TS
		}
	}
	return it, nil
}

// emit adds an item to the reply, spending its cost.
func (s *side) emit(ctx context.Context, it rangeItem) error {
	if err := s.use(ctx, costOf(&it)); err != nil {
		return err
	}
	s.out.items = append(s.out.items, it)
	return nil
}

// emitOrHandBack emits the item if the reply has room for it, and hands
// its range back otherwise.
func (s *side) emitOrHandBack(ctx context.Context, it rangeItem) error {
	c := costOf(&it)
	if !s.room().covers(c) {
		s.handBack(it.lo, it.hi)
		return nil
	}
	return s.emit(ctx, it)
}

// give sends the peer the keys it lacks and notes them as ours.
func (s *side) give(ctx context.Context, keys []Key) error {
	if len(keys) == 0 {
		return nil
	}
	if err := s.use(ctx, budget{lack: len(keys)}); err != nil {
		return err
	}
	s.learnHave(keys)
	s.out.youLack = append(s.out.youLack, keys...)
	return nil
}
