package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol/internal/streams"
	"github.com/storesync/storesync/reconcile"
)

// errNoProgress ends a catch-up from a peer whose stream delivers no
// batch: asking it again would loop.
var errNoProgress = errors.New("storesync: catch-up stream ended without a batch")

// streamRange streams the rest of a cursor's range from p into the store,
// saving the cursor with every batch, until the range is done. A server
// may end a stream before the range is (its time for one stream is
// spent); streamRange then asks again from the cursor. On error, cur
// holds how far it came, as saved.
func (s *Service) streamRange(ctx context.Context, p peer.ID, sc reconcile.Scope, cur *Cursor, t *tally, put batchStore) error {
	for cur.remaining() {
		before := cur.After
		if err := s.streamOnce(ctx, p, sc, cur, t, put); err != nil {
			return err
		}
		if cur.remaining() && cur.After == before {
			return errNoProgress
		}
	}
	return nil
}

// catchUpBatch is one batch received and verified, ready to store.
type catchUpBatch struct {
	msgs     []reconcile.Message // the good ones
	keys     []reconcile.Key     // their keys
	last     reconcile.Key       // the batch's last key, good or not
	done     bool
	rejected map[string]int
	bytes    int64
}

// streamOnce runs one catch-up stream: the request from cur.After, the
// header, then batches until done or the end of the stream. A reader
// goroutine reads and verifies the next batch while this one stores the
// last, so that the wire and the checks overlap with storage, which is
// what bounds a catch-up.
func (s *Service) streamOnce(ctx context.Context, p peer.ID, sc reconcile.Scope, cur *Cursor, t *tally, put batchStore) error {
	st, err := s.openStream(ctx, p, CatchUpID)
	if err != nil {
		return err
	}
	mem := 3*s.cfg.maxBatchBytes + batchOverhead
	if err := streams.Setup(st, ServiceName, mem); err != nil {
		return err
	}
	defer st.Scope().ReleaseMemory(mem)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer resetOnCancel(ctx, st)()
	c := newConn(st, s.cfg.maxBatchBytes+batchOverhead, s.cfg.ioTimeout, deadlineOf(ctx))
	id := sc.ID()
	req := &pb.CatchUpRequest{Scope: id[:], After: cur.After.Bytes(), AcceptZstd: true, AcceptBare: true,
		MaxBytes: uint32(s.cfg.maxBatchBytes)}
	if cur.Hi != reconcile.End {
		req.Until = cur.Hi.Bytes()
	}
	if err := s.writeFlush(c, req); err != nil {
		_ = st.Reset()
		return err
	}
	var h pb.CatchUpHeader
	if err := c.read(&h); err != nil {
		_ = st.Reset()
		return err
	}
	if err := remoteError(h.Error); err != nil {
		_ = st.Reset()
		return err
	}
	t.expect(cur.Hi, int(min(h.Count, reconcile.MaxCount)))

	batches := make(chan catchUpBatch, 1)
	var readErr error
	go func() {
		defer close(batches)
		readErr = s.readBatches(ctx, p, sc, c, *cur, batches)
	}()
	var storeErr error
	for b := range batches {
		if storeErr != nil {
			continue // drain; the reader stops once ctx is cancelled
		}
		if storeErr = s.storeBatch(ctx, p, sc, cur, b, t, put); storeErr != nil {
			cancel()
		}
	}
	if err := errors.Join(storeErr, readErr); err != nil {
		_ = st.Reset()
		return err
	}
	return closeAfterPeer(c)
}

// readBatches reads and verifies batches until one says done or the
// server ends the stream, and hands them to the storer. Keys must rise
// strictly within the range: a peer that breaks that breaks the
// protocol. Messages that fail check are dropped and counted.
func (s *Service) readBatches(ctx context.Context, p peer.ID, sc reconcile.Scope, c *conn, cur Cursor, out chan<- catchUpBatch) error {
	prev := cur.After
	for {
		in0, _ := c.bytes()
		var f pb.CatchUpBatch
		if err := c.read(&f); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the server's budget for this stream is spent
			}
			return err
		}
		if err := remoteError(f.Error); err != nil {
			return err
		}
		msgs, err := s.unpack(f.Batch, f.Zstd)
		if err != nil {
			return err
		}
		if len(msgs) == 0 && !f.Done {
			return errors.Join(ErrBadRequest, errors.New("empty catch-up batch"))
		}
		b := catchUpBatch{done: f.Done, rejected: make(map[string]int), msgs: make([]reconcile.Message, 0, len(msgs)),
			keys: make([]reconcile.Key, 0, len(msgs))}
		for _, pm := range msgs {
			m := reconcile.MessageFromPB(pm)
			if m.PubsubTopic == "" && m.ContentTopic == "" {
				// A bare message (accept_bare): the scope's.
				m.PubsubTopic, m.ContentTopic = sc.PubsubTopic, sc.ContentTopic
			}
			k := m.Key()
			if !prev.Less(k) || !k.Less(cur.Hi) {
				return errors.Join(ErrBadRequest, fmt.Errorf("catch-up message %v out of order or out of range", k))
			}
			prev = k
			if reason := s.check(ctx, p, sc, &m); reason != "" {
				b.rejected[reason]++
				continue
			}
			b.msgs = append(b.msgs, m)
			b.keys = append(b.keys, k)
		}
		b.last = prev
		in1, _ := c.bytes()
		b.bytes = in1 - in0
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.Done {
			return nil
		}
	}
}

// storeBatch stores a verified batch with the cursor it moves to (put),
// and counts it.
func (s *Service) storeBatch(ctx context.Context, p peer.ID, sc reconcile.Scope, cur *Cursor, b catchUpBatch, t *tally, put batchStore) error {
	next := *cur
	next.Peer = p
	if b.last != (reconcile.Key{}) {
		next.After = b.last
	}
	next.Done = b.done
	added, err := put(ctx, b.msgs, b.keys, next)
	if err != nil {
		return err
	}
	*cur = next
	bad, perr := s.penalize(p, sc, b.rejected)
	streamed := len(b.msgs) + bad
	if m := s.cfg.metrics; m != nil {
		m.CaughtUp(sc.String(), streamed, b.bytes)
		if added > 0 {
			m.MessagesReceived(sc.String(), added)
		}
	}
	t.add(ctx, p, cur.Hi, added, streamed, bad, b.bytes)
	return perr
}

// deadlineOf returns ctx's deadline, or the zero time.
func deadlineOf(ctx context.Context) (d time.Time) {
	d, _ = ctx.Deadline()
	return d
}
