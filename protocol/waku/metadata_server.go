package waku

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	logging "github.com/libp2p/go-libp2p/gologshim"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol/internal/lifecycle"
	"github.com/storesync/storesync/protocol/internal/streams"
)

// MetadataService answers the metadata requests of peers on a host
// with the node's cluster and shards. Its handlers share nothing but
// their tracking for Close. Safe for concurrent use.
type MetadataService struct {
	h       host.Host
	cluster uint16
	shards  func() []uint16
	cfg     metadataConfig

	ctx      context.Context
	cancel   context.CancelFunc
	handlers lifecycle.Handlers
}

// NewMetadataService mounts the metadata protocol on h. Every answer
// gives cluster and the shards that shards returns then, so that a
// node's answer follows the scopes it keeps; shards may be nil for none,
// and must be safe to call from many goroutines. Close removes it.
func NewMetadataService(h host.Host, cluster uint16, shards func() []uint16, opts ...MetadataOption) (*MetadataService, error) {
	if h == nil {
		return nil, errors.New("waku: nil host")
	}
	cfg := metadataConfig{timeout: DefaultMetadataTimeout, logger: logging.Logger("storesync/waku")}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if shards == nil {
		shards = func() []uint16 { return nil }
	}
	s := &MetadataService{h: h, cluster: cluster, shards: shards, cfg: cfg}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(MetadataID, s.handle)
	return s, nil
}

// Close removes the handler, resets the streams still being answered
// and waits for their handlers to return.
func (s *MetadataService) Close() error {
	s.h.RemoveStreamHandler(MetadataID)
	s.handlers.Stop()
	s.cancel()
	s.handlers.Wait()
	return nil
}

// Self returns what the service answers now: its cluster and the
// shards that the shards function gives, sorted, each once, and those of
// MaxShards or more left out, as no peer would take them.
func (s *MetadataService) Self() Metadata {
	shards := slices.DeleteFunc(slices.Clone(s.shards()), func(v uint16) bool { return v >= MaxShards })
	slices.Sort(shards)
	return Metadata{ClusterID: s.cluster, Shards: slices.Compact(shards)}
}

// handle runs one exchange: it resets the stream on any failure and
// closes it after a good answer.
func (s *MetadataService) handle(st network.Stream) {
	if !s.handlers.Enter() {
		_ = st.Reset()
		return
	}
	defer s.handlers.Done()

	p := st.Conn().RemotePeer()
	if err := streams.Setup(st, MetadataServiceName, metadataMemory); err != nil {
		s.cfg.logger.Debug("metadata stream refused by the resource manager", "peer", p, "err", err)
		return
	}
	defer st.Scope().ReleaseMemory(metadataMemory)
	stop := context.AfterFunc(s.ctx, func() { _ = st.Reset() })
	defer stop()
	_ = st.SetDeadline(time.Now().Add(s.cfg.timeout))

	theirs, err := s.serveMetadata(st)
	if err != nil {
		level := slog.LevelDebug
		if errors.Is(err, ErrInvalidMetadata) {
			level = slog.LevelWarn
		}
		s.cfg.logger.Log(s.ctx, level, "metadata exchange failed", "peer", p, "err", err)
		_ = st.Reset()
		return
	}
	s.cfg.logger.Debug("metadata exchanged", "peer", p, "cluster", theirs.ClusterID, "shards", theirs.Shards)
	_ = st.Close()
}

// serveMetadata reads a peer's request from rw and writes the answer. It
// returns what the peer said of itself.
func (s *MetadataService) serveMetadata(rw io.ReadWriter) (Metadata, error) {
	var req pb.WakuMetadataRequest
	if err := readMetadataMsg(rw, &req); err != nil {
		return Metadata{}, err
	}
	theirs, err := metadataFromWire(req.ClusterId, req.Shards)
	if err != nil {
		return Metadata{}, err
	}
	self := s.Self()
	resp := pb.WakuMetadataResponse{ClusterId: uint32(self.ClusterID), Shards: self.wireShards()}
	if err := writeMetadataMsg(rw, &resp); err != nil {
		return Metadata{}, err
	}
	return theirs, nil
}
