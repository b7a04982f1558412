package protocol

import (
	"context"
	"errors"
	"io"

	"github.com/gogo/protobuf/proto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/reconcile"
)

// handleFetch serves fetch requests on one stream until the client
// closes it: resource scope, limits and logging (serveStream); serveFetch
// holds the logic.
func (s *Service) handleFetch(st network.Stream) {
	refusal := func(err error) proto.Message { return &pb.FetchResponse{Error: wireError(err)} }
	s.serveStream(st, s.fetches, 2*s.cfg.maxBatchBytes+64<<10, s.cfg.maxBatchMessages*reconcile.KeyWireMax+1024,
		"fetch", refusal, s.serveFetch)
}

// admitVolume returns an error wrapping ErrBusy if p may not be sent
// more of sc (Service.volume).
func (s *Service) admitVolume(ctx context.Context, p peer.ID, sc reconcile.Scope) error {
	if c, ok := s.store.(ScopeCounter); ok {
		n, ok := c.ScopeCount(sc)
		if !ok {
			return ErrUnsupportedScope
		}
		return s.volume.admit(p, sc, n)
	}
	set, ok := s.store.Set(sc)
	if !ok {
		return ErrUnsupportedScope
	}
	all, err := set.Aggregate(ctx, reconcile.Key{}, reconcile.End)
	if err != nil {
		return err
	}
	return s.volume.admit(p, sc, all.Count)
}

// serveFetch answers requests until the client closes the stream.
func (s *Service) serveFetch(ctx context.Context, p peer.ID, c *conn) error {
	for {
		var req pb.FetchRequest
		if err := c.read(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		resp, err := s.answerFetch(ctx, p, &req)
		if err != nil {
			return err
		}
		if err := c.write(resp); err != nil {
			return err
		}
		if err := c.flush(); err != nil {
			return err
		}
	}
}

// answerFetch builds the response to one request: the stored messages
// with the keys asked for, in order, up to the smaller of the two sides'
// byte limits, compressed when that pays. A scope we do not keep, or a
// peer over its volume, is answered with an error the client can act on;
// a malformed request ends the stream.
func (s *Service) answerFetch(ctx context.Context, p peer.ID, req *pb.FetchRequest) (*pb.FetchResponse, error) {
	keys, err := reconcile.ParseKeys(req.Keys, s.cfg.maxBatchMessages)
	switch {
	case errors.Is(err, reconcile.ErrTooManyKeys):
		return nil, errors.Join(ErrTooLarge, errors.New("fetch request names too many keys"))
	case err != nil || len(req.Scope) != 8 || len(keys) == 0:
		return nil, errors.Join(ErrBadRequest, errors.New("malformed fetch request"), err)
	}
	scope, ok := s.store.ScopeByID([8]byte(req.Scope))
	if !ok {
		return &pb.FetchResponse{Error: wireError(ErrUnsupportedScope)}, nil
	}
	if !s.cfg.allowed(p, scope) {
		return &pb.FetchResponse{Error: wireError(ErrRefused)}, nil
	}
	if err := s.admitVolume(ctx, p, scope); err != nil {
		if errors.Is(err, ErrBusy) {
			s.tarpit()
			return &pb.FetchResponse{Error: wireError(err)}, nil
		}
		return nil, err
	}
	msgs, err := s.store.Get(ctx, scope, keys)
	if err != nil {
		return nil, err
	}
	limit := s.cfg.maxBatchBytes
	if req.MaxBytes > 0 && int(req.MaxBytes) < limit {
		limit = int(req.MaxBytes)
	}
	batch := &pb.MessageBatch{}
	size, answered := 0, 0
	for _, m := range msgs {
		if m != nil {
			pm := m.ToPB()
			sz := pm.Size() + 8
			if size+sz > limit {
				if answered > 0 {
					break
				}
				// One message larger than the client takes can never be
				// sent: answer its hash without it rather than stall.
				answered++
				continue
			}
			batch.Messages = append(batch.Messages, pm)
			size += sz
		}
		answered++
	}
	resp := &pb.FetchResponse{Answered: uint32(answered)}
	resp.Batch = batch
	if req.AcceptZstd {
		raw, err := batch.Marshal()
		if err != nil {
			return nil, err
		}
		if z := compress(raw); pays(len(raw), z) {
			resp.Zstd, resp.Batch = z, nil
		}
	}
	if m := s.cfg.metrics; m != nil {
		m.MessagesSent(scope.String(), len(batch.Messages))
	}
	s.volume.charge(p, scope, len(batch.Messages))
	return resp, nil
}
