package protocol

import (
	"context"
	"errors"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/reconcile"
)

// maxSplits bounds the split keys of a catch-up header: enough to share
// a scope among many peers, few enough to cost a few kilobytes.
const maxSplits = 256

// handleCatchUp serves one catch-up stream: resource scope, limits and
// logging (serveStream); serveCatchUp holds the logic.
func (s *Service) handleCatchUp(st network.Stream) {
	refusal := func(err error) proto.Message { return &pb.CatchUpBatch{Error: wireError(err)} }
	s.serveStream(st, s.catchUps, 2*s.cfg.maxBatchBytes+batchOverhead, 1024, "catch-up", refusal, s.serveCatchUp)
}

// serveCatchUp reads the request, answers with the header, then streams
// the range's messages in batches until the range is done or the
// stream's time is nearly spent; the client then asks again from its
// last key.
func (s *Service) serveCatchUp(ctx context.Context, p peer.ID, c *conn) error {
	var req pb.CatchUpRequest
	if err := c.read(&req); err != nil {
		return err
	}
	sc, after, until, err := s.catchUpRange(p, &req)
	if err != nil {
		var re *RemoteError
		if errors.As(err, &re) {
			// The client can act on it (another peer, another scope):
			// an answer, not a broken stream.
			return s.writeFlush(c, &pb.CatchUpHeader{Error: &pb.Error{Code: re.Code, Detail: re.Detail}})
		}
		return err
	}
	cs := s.store.(CatchUpStore)
	set, ok := s.store.Set(sc)
	if !ok {
		return s.writeFlush(c, &pb.CatchUpHeader{Error: wireError(ErrUnsupportedScope)})
	}
	h, total, err := catchUpHeader(ctx, set, after, until, req.Summary)
	if err != nil {
		return err
	}
	if !req.Summary {
		if err := s.volume.admit(p, sc, total); err != nil {
			s.tarpit()
			return s.writeFlush(c, &pb.CatchUpHeader{Error: wireError(err)})
		}
	}
	if err := s.writeFlush(c, h); err != nil || req.Summary {
		return err
	}
	limit := s.cfg.maxBatchBytes
	if req.MaxBytes > 0 && int(req.MaxBytes) < limit {
		limit = max(int(req.MaxBytes), 64<<10)
	}
	// Stop early enough to end the stream cleanly, with a batch the
	// client stores, rather than at the deadline with a reset.
	stopAt := time.Now().Add(s.cfg.sessionTimeout * 9 / 10)
	b := &batcher{s: s, c: c, peer: p, zstd: req.AcceptZstd, bare: req.AcceptBare, limit: limit, scope: sc}
	err = cs.Scan(ctx, sc, after, until, func(k reconcile.Key, raw []byte) error {
		if b.bare {
			raw = withoutTopics(raw)
		}
		if b.size > 0 && b.size+len(raw)+8 > limit {
			if err := b.flush(false); err != nil {
				return err
			}
			if time.Now().After(stopAt) {
				return errStreamBudget
			}
		}
		b.add(raw)
		return nil
	})
	switch {
	case errors.Is(err, errStreamBudget):
		return nil // the client goes on from its last key
	case err != nil:
		return err
	}
	return b.flush(true)
}

// errStreamBudget ends a catch-up stream whose time is nearly spent.
var errStreamBudget = errors.New("catch-up stream budget spent")

// catchUpRange checks a request and returns its scope and bounds. A scope
// the client may not have is a *RemoteError to answer with; a malformed
// request is ErrBadRequest.
func (s *Service) catchUpRange(p peer.ID, req *pb.CatchUpRequest) (sc reconcile.Scope, after, until reconcile.Key, err error) {
	bad := func(what string) error { return errors.Join(ErrBadRequest, errors.New(what)) }
	if len(req.Scope) != 8 {
		return sc, after, until, bad("malformed scope")
	}
	until = reconcile.End
	if len(req.After) > 0 {
		if after, err = reconcile.KeyFromBytes(req.After); err != nil {
			return sc, after, until, bad("malformed after key")
		}
	}
	if len(req.Until) > 0 {
		if until, err = reconcile.KeyFromBytes(req.Until); err != nil {
			return sc, after, until, bad("malformed until key")
		}
	}
	if !after.Less(until) {
		return sc, after, until, bad("empty range")
	}
	sc, ok := s.store.ScopeByID([8]byte(req.Scope))
	if !ok {
		return sc, after, until, &RemoteError{Code: pb.Code_UNSUPPORTED_SCOPE}
	}
	if !s.cfg.allowed(p, sc) {
		return sc, after, until, &RemoteError{Code: pb.Code_REFUSED}
	}
	return sc, after, until, nil
}

// catchUpHeader describes the range (after, until) of set: its count,
// the scope's root, and, for a summary, where the tree's top boundaries
// cut the range and how many messages each part holds. It also returns
// the scope's count.
func catchUpHeader(ctx context.Context, set reconcile.Set, after, until reconcile.Key, summary bool) (*pb.CatchUpHeader, uint64, error) {
	// after is exclusive: a resumed request names the last key it holds.
	from := after.Next()
	agg, err := set.Aggregate(ctx, from, until)
	if err != nil {
		return nil, 0, err
	}
	root, err := set.Aggregate(ctx, reconcile.Key{}, reconcile.End)
	if err != nil {
		return nil, 0, err
	}
	fp := root.Fingerprint()
	h := &pb.CatchUpHeader{Count: agg.Count, Root: fp[:]}
	if !summary {
		return h, root.Count, nil
	}
	splits, err := summarySplits(ctx, set, from, until)
	if err != nil {
		return nil, 0, err
	}
	prev := from
	for i := 0; i <= len(splits); i++ {
		end := until
		if i < len(splits) {
			end = splits[i]
			h.Splits = append(h.Splits, end.Bytes()...)
		}
		part, err := set.Aggregate(ctx, prev, end)
		if err != nil {
			return nil, 0, err
		}
		h.PartCounts = append(h.PartCounts, part.Count)
		prev = end
	}
	return h, root.Count, nil
}

// summarySplits cuts (after, until) along the tree's node boundaries:
// those of the highest level that has any in the range, then, while the
// parts are fewer than a catch-up from many peers can share, those of
// the levels below, and at most maxSplits in all.
func summarySplits(ctx context.Context, set reconcile.Set, after, until reconcile.Key) ([]reconcile.Key, error) {
	const enough = maxSplits / 4
	splits, err := set.Splits(ctx, after, until)
	for err == nil && len(splits) > 0 && len(splits) < enough {
		var finer []reconcile.Key
		prev := after
		for i := 0; i <= len(splits) && err == nil; i++ {
			end := until
			if i < len(splits) {
				end = splits[i]
			}
			var sub []reconcile.Key
			sub, err = set.Splits(ctx, prev, end)
			finer = append(finer, sub...)
			if i < len(splits) {
				finer = append(finer, end)
			}
			prev = end
		}
		if len(finer) == len(splits) {
			break // the leaves: nothing finer
		}
		splits = finer
	}
	if err != nil {
		return nil, err
	}
	if len(splits) > maxSplits {
		// Every k-th split keeps the parts along the tree's boundaries.
		k := (len(splits) + maxSplits - 1) / maxSplits
		kept := splits[:0]
		for i := k - 1; i < len(splits); i += k {
			kept = append(kept, splits[i])
		}
		splits = kept
	}
	return splits, nil
}

// writeFlush sends one message at once.
func (s *Service) writeFlush(c *conn, m proto.Message) error {
	if err := c.write(m); err != nil {
		return err
	}
	return c.flush()
}
