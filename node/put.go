package node

import (
	"context"
	"fmt"
	"slices"

	"github.com/storesync/storesync/reconcile"
)

// PutResult reports what Put did with each message it was given.
type PutResult struct {
	// Added holds the messages stored by this call, in input order. They
	// share their Payload and Meta with the input.
	Added []reconcile.Message
	// Duplicates counts messages already stored, or given twice.
	Duplicates int
	// Rejected lists the messages refused, by input index.
	Rejected []Rejection
}

// Rejection is a message Put refused: Err wraps ErrInvalidMessage (with
// the reason, such as reconcile.ErrMessageTooLarge) or ErrUnknownScope.
type Rejection struct {
	Index int
	Err   error
}

// putChunk bounds the messages of one commit, so that a Put of any size
// holds a bounded batch in memory.
const putChunk = 4096

// Put validates and stores messages. Messages of scopes not kept are
// rejected (reported per message with ErrUnknownScope), invalid ones
// (reconcile.Message.Validate), ones larger than the store's maximum
// message size (WithMaxMessageSize) and ones timestamped further ahead of
// its clock than WithMaxClockSkew allows rejected with ErrInvalidMessage, and
// duplicates skipped; neither fails the call. The messages commit with
// their tree entries and their scopes' counts and sums in one batch,
// whatever scopes they belong to, up to 4,096 messages a batch; a larger
// call commits in several, in input order. Subscribers see the added
// messages after their batch has committed.
//
// The error is for a failure of the datastore or of ctx; the result then
// still lists what the batches committed before the failure added.
func (s *Store) Put(ctx context.Context, msgs ...reconcile.Message) (PutResult, error) {
	return s.put(ctx, msgs, nil, nil)
}

// put is Put, with extra records written in the last batch: the batch
// that makes the call's last message durable also makes them durable.
// keys, when not nil, holds the messages' keys, computed from their
// content by a caller that verified them (a catch-up, an import), so
// that they are not hashed twice.
func (s *Store) put(ctx context.Context, msgs []reconcile.Message, keys []reconcile.Key, extra writeFunc) (PutResult, error) {
	var res PutResult
	if err := s.enter(); err != nil {
		return res, err
	}
	defer s.calls.Done()
	var added []int
	var err error
	for from := 0; ; from += putChunk {
		to := min(from+putChunk, len(msgs))
		last := to == len(msgs)
		var ex writeFunc
		if last {
			ex = extra
		}
		if err = ctx.Err(); err != nil {
			break
		}
		var idx []int
		if idx, err = s.putChunk(ctx, msgs, keys, from, to, &res, ex); err != nil {
			break
		}
		added = append(added, idx...)
		if last {
			break
		}
	}
	slices.Sort(added)
	res.Added = make([]reconcile.Message, 0, len(added))
	for _, i := range added {
		res.Added = append(res.Added, msgs[i])
	}
	return res, err
}

// putChunk validates msgs[from:to], commits the valid ones of kept scopes
// in one batch and returns the indices it added.
func (s *Store) putChunk(ctx context.Context, msgs []reconcile.Message, keys []reconcile.Key, from, to int, res *PutResult, extra writeFunc) ([]int, error) {
	// Two passes: find each message's scope, then give every scope's
	// change its share of one array, so that a chunk spread over many
	// scopes costs no allocation per scope.
	n := to - from
	of := make([]int32, n) // the change of msgs[from+i], or -1
	c := &changes{}
	byScope := make(map[*scopeState]int32, min(n, s.scopeCount()))
	valid := 0
	for i := from; i < to; i++ {
		m := &msgs[i]
		of[i-from] = -1
		if err := s.check(m); err != nil {
			res.Rejected = append(res.Rejected, Rejection{Index: i, Err: err})
			continue
		}
		st, ok := s.state(m.Scope())
		if !ok {
			res.Rejected = append(res.Rejected, Rejection{Index: i, Err: fmt.Errorf("%w: %s", ErrUnknownScope, m.Scope())})
			continue
		}
		j, ok := byScope[st]
		if !ok {
			j = int32(len(c.chs))
			byScope[st] = j
			c.chs = append(c.chs, change{st: st})
		}
		of[i-from] = j
		c.chs[j].n++
		valid++
	}
	if len(c.chs) == 0 && extra == nil {
		return nil, nil
	}
	c.add, c.added = make([]int, valid), make([]int, valid)
	c.keys, c.fresh = make([]reconcile.Key, valid), make([]reconcile.Key, valid)
	// Each change's share starts where the one before it ends; n counts
	// up again as its messages are placed.
	var off int32
	for j := range c.chs {
		ch := &c.chs[j]
		ch.off, off = off, off+ch.n
		ch.n = 0
	}
	for i := from; i < to; i++ {
		j := of[i-from]
		if j < 0 {
			continue
		}
		ch := &c.chs[j]
		at := ch.off + ch.n
		ch.n++
		c.add[at] = i
		if keys != nil {
			c.keys[at] = keys[i]
		} else {
			c.keys[at] = msgs[i].Key()
		}
	}
	if err := s.commit(ctx, msgs, c, extra); err != nil {
		return nil, err
	}
	added := make([]int, 0, valid)
	for j := range c.chs {
		added = append(added, c.addedOf(&c.chs[j])...)
	}
	res.Duplicates += valid - len(added)
	slices.Sort(added)
	s.subs.publish(msgs, added)
	s.jmu.Lock()
	due, over := s.flushDue()
	s.jmu.Unlock()
	switch {
	case over:
		// The messages are committed whether or not the flush works;
		// one that fails leaves the keys pending for the next.
		if err := s.flush(ctx); err != nil {
			log.Warn("flushing the journal failed", "err", err)
		}
	case due:
		s.kickFlusher()
	}
	return added, nil
}

// check validates a message for storing: its fields, its size and its
// timestamp against the clock.
func (s *Store) check(m *reconcile.Message) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if err := m.CheckSize(s.cfg.maxMessageSize); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if err := m.CheckClock(s.cfg.now(), s.cfg.maxClockSkew); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	return nil
}
