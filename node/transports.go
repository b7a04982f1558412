package node

import (
	"errors"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
)

// WithMplex offers mplex (MplexID) on the node's own host, after yamux,
// which stays preferred: js-waku offers only mplex by default. It needs
// the node's own host; for one given by WithHost, add the muxer there
// (libp2p.Muxer(MplexID, Mplex{})). Default off.
func WithMplex(on bool) Option {
	return func(c *config) error {
		c.mplex = on
		return nil
	}
}

// errMplexOnGivenHost is New's answer to WithMplex with WithHost.
var errMplexOnGivenHost = errors.New("node: WithMplex applies to the node's own host; add libp2p.Muxer(node.MplexID, node.Mplex{}) to the host given by WithHost")

// muxerOptions returns the muxers of the node's own host: libp2p's
// default (yamux) alone, or yamux then mplex. Naming any muxer drops
// libp2p's defaults, hence yamux named again.
func muxerOptions(cfg *config) []libp2p.Option {
	if !cfg.mplex {
		return nil
	}
	return []libp2p.Option{libp2p.Muxer(yamux.ID, yamux.DefaultTransport), libp2p.Muxer(MplexID, Mplex{})}
}
