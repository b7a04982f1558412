package protocol

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol/internal/streams"
	"github.com/storesync/storesync/reconcile"
)

// fetchJob is the messages of one scope to fetch from a peer, and where
// the outcome goes.
type fetchJob struct {
	index  int
	scope  reconcile.Scope
	keys   []reconcile.Key // ascending
	report ScopeReport
}

// fetch gets the jobs' messages from p over one stream, in batches, and
// stores the ones that pass verification. Hashes already stored are not
// asked for.
func (s *Service) fetch(ctx context.Context, p peer.ID, jobs []*fetchJob) error {
	st, err := s.openStream(ctx, p, FetchID)
	if err != nil {
		return err
	}
	mem := 2*s.cfg.maxBatchBytes + 64<<10
	if err := streams.Setup(st, ServiceName, mem); err != nil {
		return err
	}
	defer st.Scope().ReleaseMemory(mem)
	defer resetOnCancel(ctx, st)()
	deadline, _ := ctx.Deadline()
	c := newConn(st, s.cfg.maxBatchBytes+64<<10, s.cfg.ioTimeout, deadline)
	for _, j := range jobs {
		if err := s.fetchJob(ctx, p, c, j); err != nil {
			_ = st.Reset()
			return err
		}
	}
	return st.Close()
}

func (s *Service) fetchJob(ctx context.Context, p peer.ID, c *conn, j *fetchJob) error {
	var todo []reconcile.Key
	for _, k := range j.keys {
		has, err := s.store.Has(ctx, j.scope, k)
		if err != nil {
			return err
		}
		if !has {
			todo = append(todo, k)
		}
	}
	id := j.scope.ID()
	total := len(todo)
	for len(todo) > 0 {
		batch := todo[:min(len(todo), s.cfg.maxBatchMessages)]
		req := &pb.FetchRequest{Scope: id[:], Keys: reconcile.AppendKeys(nil, batch), AcceptZstd: true,
			MaxBytes: uint32(s.cfg.maxBatchBytes)}
		in0, out0 := c.bytes()
		if err := c.write(req); err != nil {
			return err
		}
		if err := c.flush(); err != nil {
			return err
		}
		var resp pb.FetchResponse
		if err := c.read(&resp); err != nil {
			return err
		}
		in1, out1 := c.bytes()
		j.report.Bytes += in1 - in0 + out1 - out0
		if err := remoteError(resp.Error); err != nil {
			return err
		}
		n := int(resp.Answered)
		if n == 0 || n > len(batch) {
			return errors.Join(ErrBadRequest, fmt.Errorf("fetch response answers %d of %d keys", n, len(batch)))
		}
		msgs, err := s.unpack(resp.Batch, resp.Zstd)
		if err != nil {
			return err
		}
		if err := s.accept(ctx, p, j, batch[:n], msgs); err != nil {
			return err
		}
		todo = todo[n:]
		progressOf(ctx)(Progress{Kind: ProgressFetch, Peer: p, Scope: j.scope, Done: total - len(todo), Total: total, Bytes: j.report.Bytes})
	}
	return nil
}

// unpack returns the messages of a batch sent plain or zstd-compressed
// (never both), decompressing within our batch limit.
func (s *Service) unpack(batch *pb.MessageBatch, z []byte) ([]*pb.Message, error) {
	if len(z) == 0 {
		if batch == nil {
			return nil, nil
		}
		return batch.Messages, nil
	}
	if batch != nil {
		return nil, errors.Join(ErrBadRequest, errors.New("a batch both plain and compressed"))
	}
	raw, err := decompress(z, s.cfg.maxBatchBytes+batchOverhead)
	switch {
	case errors.Is(err, ErrTooLarge):
		return nil, err
	case err != nil:
		return nil, errors.Join(ErrBadRequest, err)
	}
	var b pb.MessageBatch
	if err := b.Unmarshal(raw); err != nil {
		return nil, errors.Join(ErrBadRequest, err)
	}
	return b.Messages, nil
}

// accept verifies received messages and stores the good ones: each must
// have one of the keys asked for (once), its hash recomputed from its
// content, and pass check. The bad ones are dropped and counted against
// the peer; the good ones in the same batch are kept.
func (s *Service) accept(ctx context.Context, p peer.ID, j *fetchJob, asked []reconcile.Key, msgs []*pb.Message) error {
	want := make(map[reconcile.Key]bool, len(asked))
	for _, k := range asked {
		want[k] = true
	}
	var good []reconcile.Message
	rejected := make(map[string]int)
	for _, pm := range msgs {
		m := reconcile.MessageFromPB(pm)
		k := m.Key()
		if !want[k] {
			rejected[rejectHash]++
			continue
		}
		if reason := s.check(ctx, p, j.scope, &m); reason != "" {
			rejected[reason]++
			continue
		}
		want[k] = false
		good = append(good, m)
	}
	added, err := s.store.Put(ctx, good)
	if err != nil {
		return err
	}
	j.report.Received += added
	if m := s.cfg.metrics; m != nil && added > 0 {
		m.MessagesReceived(j.scope.String(), added)
	}
	bad, err := s.penalize(p, j.scope, rejected)
	j.report.Rejected += bad
	return err
}

// Fetch gets the messages with the given keys of one scope from p,
// verified as Sync verifies them, and stores the good ones. Keys already
// stored are not asked for. It serves announcements of recent messages,
// which need no reconciliation.
func (s *Service) Fetch(ctx context.Context, p peer.ID, sc reconcile.Scope, keys []reconcile.Key) (ScopeReport, error) {
	if _, ok := s.store.Set(sc); !ok {
		return ScopeReport{Scope: sc}, fmt.Errorf("%w: %v", ErrUnknownScope, sc)
	}
	if s.strikes.isRefused(p) {
		return ScopeReport{Scope: sc}, fmt.Errorf("%w: peer %s sent too many bad messages", ErrRefused, p)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.sessionTimeout)
	defer cancel()
	keys = reconcile.NewSliceSet(keys) // sorted, once each, as a request lists them
	j := &fetchJob{scope: sc, keys: keys, report: ScopeReport{Scope: sc, Need: len(keys)}}
	start := time.Now()
	err := s.fetch(ctx, p, []*fetchJob{j})
	j.report.Duration = time.Since(start)
	return j.report, err
}
