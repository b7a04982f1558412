package reconcile

import (
	"context"
	"fmt"
	"slices"

	"github.com/storesync/storesync/pb"
)

// Session is the initiating side of a reconciliation of one key range. It
// is a state machine fed with the responder's messages: Start returns the
// first message, Next takes each reply and returns the next message until
// the session is done. It has no goroutines and does no I/O beyond
// reading its Set. Not safe for concurrent use.
//
// At the end both sides know both directions of the difference: the
// initiator from Result, the responder from what Responder.Respond
// returned across the session. A session bounds its messages
// (Params.MaxMessages) and what it learns (Params.MaxDiff); one that
// reaches either ends incomplete rather than failing, with what it
// learned so far (Complete, Unresolved). Every message it sends stays
// within the limits of its Params, which the responder is assumed to
// share.
type Session struct {
	side
	params     Params
	lo, hi     Key
	sketches   map[[2]Key]*sketchState
	wanted     map[ShortID]*sketchState
	asked      []*sketchState // WANTs in the message being built, in key order
	answered   []*sketchState // WANTs the reply being handled must answer
	messages   int
	done       bool
	unresolved []Range
	// stuckScanned counts the keys read to free stuck sketches
	// (freeStuck), against maxStuckScan.
	stuckScanned int
	noMatch      bool // WithoutMatch
}

// NewSession prepares a session over the keys of set in [lo, hi): the
// whole scope is (Key{}, End), a time window [TimeBound(from),
// TimeBound(to)).
func NewSession(set Set, lo, hi Key, p Params) (*Session, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if !lo.Less(hi) {
		return nil, fmt.Errorf("empty session range [%v, %v)", lo, hi)
	}
	s := &Session{params: p, lo: lo, hi: hi, sketches: make(map[[2]Key]*sketchState),
		wanted: make(map[ShortID]*sketchState)}
	s.side = newSide(set, &s.params, true)
	return s, nil
}

// Start returns the first message: the range's fingerprint, count and
// newest timestamp. Equal sets end the session with the reply.
func (s *Session) Start(ctx context.Context) ([]*pb.ReconcileFrame, error) {
	it, err := s.fingerprintItem(ctx, s.lo, s.hi, true)
	if err != nil {
		return nil, err
	}
	s.messages = 1
	return encode(&message{items: []rangeItem{it}}, s.p.FrameSize), nil
}

// Next handles the responder's reply and returns the next message. When
// done is true the session is over and out, if not nil, is a last message
// to deliver without waiting for an answer; Complete then tells whether
// the session resolved its whole range.
func (s *Session) Next(ctx context.Context, in []*pb.ReconcileFrame) (out []*pb.ReconcileFrame, done bool, err error) {
	if s.done {
		return nil, true, fmt.Errorf("%w: session already done", ErrUnexpected)
	}
	s.messages++
	m, err := decode(in, &s.p.Limits)
	if err != nil {
		return nil, false, err
	}
	s.reset()
	s.left = s.left.capped(messageAllowance(s.p))
	// Every task of the initiator may hand its range back, so one item
	// is held for the tail throughout: the whole reply is one run.
	s.hold.items = 1
	s.answered, s.asked = s.asked, nil
	s.asks = (s.p.MaxMessages - s.messages) / 2
	if m.items, err = s.takeAnswers(m.items); err != nil {
		return nil, false, err
	}
	if overlaps(m.items, s.answered) {
		return nil, false, fmt.Errorf("%w: reply covers a range awaiting hashes", ErrUnexpected)
	}
	s.onYouLack(m.youLack)
	if err := s.handle(ctx, m.items); err != nil {
		return nil, false, err
	}
	if err := s.endRun(ctx); err != nil {
		return nil, false, err
	}
	slices.SortFunc(s.out.items, func(a, b rangeItem) int { return a.lo.Compare(b.lo) })
	if s.asks == 1 {
		if err := s.gamble(ctx); err != nil {
			return nil, false, err
		}
	}
	if !s.out.needsReply() {
		s.finish()
		return s.last(), true, nil
	}
	if s.messages+2 > s.p.MaxMessages || s.learned() >= s.p.MaxDiff {
		s.cutShort()
		return s.last(), true, nil
	}
	s.messages++
	return encode(&s.out, s.p.FrameSize), false, nil
}

// handle answers the reply's items and continues the sketches whose
// WANTs it answers, together in key order, so that hand-backs merge.
func (s *Session) handle(ctx context.Context, items []rangeItem) error {
	own := func(it *rangeItem) error {
		switch it.mode {
		case pb.Mode_SKETCH:
			return s.onSketch(ctx, it)
		case pb.Mode_MATCH:
			return s.onMatch(ctx, it)
		}
		return fmt.Errorf("%w: %v sent to the initiator", ErrUnexpected, it.mode)
	}
	i, j := 0, 0
	for i < len(items) || j < len(s.answered) {
		var err error
		if j < len(s.answered) && (i == len(items) || s.answered[j].lo.Less(items[i].lo)) {
			err = s.advance(ctx, s.answered[j])
			j++
		} else {
			it := &items[i]
			i++
			if st := s.sketches[[2]Key{it.lo, it.hi}]; st != nil && it.mode == pb.Mode_FINGERPRINT {
				// The responder gave the range back rather than read it
				// for the cells asked for: the sketch ends there.
				s.drop(st)
			}
			err = s.onItem(ctx, it, own)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// overlaps reports whether an item overlaps the range of a state; both
// are sorted and disjoint among themselves.
func overlaps(items []rangeItem, states []*sketchState) bool {
	i, j := 0, 0
	for i < len(items) && j < len(states) {
		switch {
		case !states[j].lo.Less(items[i].hi):
			i++
		case !items[i].lo.Less(states[j].hi):
			j++
		default:
			return true
		}
	}
	return false
}

// last returns the session's last message, or nil if it has nothing to
// deliver.
func (s *Session) last() []*pb.ReconcileFrame {
	if len(s.out.items) == 0 && len(s.out.youLack) == 0 {
		return nil
	}
	return encode(&s.out, s.p.FrameSize)
}

// Result returns what the initiator learned: the whole difference once
// the session is Complete, part of it otherwise. What it returns is true
// either way, so a caller may act on it.
func (s *Session) Result() Diff { return s.diff() }

// Messages returns how many messages the session has sent and received.
func (s *Session) Messages() int { return s.messages }

// onYouLack records the keys the responder says we lack, and matches
// the ones asked for by short ID.
func (s *Session) onYouLack(keys []Key) {
	s.learnNeed(keys)
	for i := range keys {
		id := keyID(&keys[i])
		if st := s.wanted[id]; st != nil {
			delete(s.wanted, id)
			st.missing--
			st.received = st.received.AddHash(&keys[i].Hash)
		}
	}
}
