package node

import (
	"context"
	"errors"
	"net"

	"github.com/libp2p/go-libp2p/core/network"
	mplex "github.com/libp2p/go-mplex"
)

// MplexID is the protocol ID of mplex, the stream muxer that js-waku
// offers by default and go-libp2p no longer ships.
const MplexID = "/mplex/6.7.0"

// Mplex is a network.Multiplexer over go-mplex, for hosts that must
// accept peers offering no other muxer: libp2p.Muxer(MplexID, Mplex{}).
// mplex has no flow control and no error codes; keep yamux first where
// both are on, so that peers that can choose choose yamux. The zero
// value is ready; safe for concurrent use.
type Mplex struct{}

var _ network.Multiplexer = Mplex{}

// NewConn runs mplex over c, with its buffers reserved in scope when
// there is one.
func (Mplex) NewConn(c net.Conn, isServer bool, scope network.PeerScope) (network.MuxedConn, error) {
	var mem mplex.MemoryManager
	if scope != nil {
		mem = scope
	}
	m, err := mplex.NewMultiplex(c, !isServer, mem)
	if err != nil {
		return nil, err
	}
	return &mplexConn{m: m}, nil
}

// mplexConn is an mplex session as a network.MuxedConn.
type mplexConn struct{ m *mplex.Multiplex }

var _ network.MuxedConn = (*mplexConn)(nil)

func (c *mplexConn) Close() error { return c.m.Close() }

// CloseWithError closes the session; mplex cannot carry the code.
func (c *mplexConn) CloseWithError(network.ConnErrorCode) error { return c.m.Close() }

func (c *mplexConn) IsClosed() bool { return c.m.IsClosed() }

func (c *mplexConn) OpenStream(ctx context.Context) (network.MuxedStream, error) {
	s, err := c.m.NewStream(ctx)
	if err != nil {
		return nil, err
	}
	return mplexStream{s}, nil
}

func (c *mplexConn) AcceptStream() (network.MuxedStream, error) {
	s, err := c.m.Accept()
	if err != nil {
		return nil, err
	}
	return mplexStream{s}, nil
}

// As sets a **mplex.Multiplex target to the session.
func (c *mplexConn) As(target any) bool {
	if t, ok := target.(**mplex.Multiplex); ok {
		*t = c.m
		return true
	}
	return false
}

// mplexStream is an mplex stream as a network.MuxedStream. Its reads and
// writes on a reset stream fail with network.ErrReset, which is what
// libp2p code checks for.
type mplexStream struct{ *mplex.Stream }

var _ network.MuxedStream = mplexStream{}

func (s mplexStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	return n, resetErr(err)
}

func (s mplexStream) Write(p []byte) (int, error) {
	n, err := s.Stream.Write(p)
	return n, resetErr(err)
}

// ResetWithError resets the stream; mplex cannot carry the code.
func (s mplexStream) ResetWithError(network.StreamErrorCode) error { return s.Reset() }

func resetErr(err error) error {
	if errors.Is(err, mplex.ErrStreamReset) {
		return network.ErrReset
	}
	return err
}
