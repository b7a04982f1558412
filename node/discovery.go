package node

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// startMDNS finds peers on the local network and connects to them, so
// that GossipSub can take them into the groups' meshes.
func (n *Node) startMDNS(tag string) error {
	svc := mdns.NewMdnsService(n.host, tag, mdnsNotifee{n})
	if err := svc.Start(); err != nil {
		return err
	}
	n.closers = append(n.closers, svc.Close)
	return nil
}

type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == m.n.host.ID() || m.n.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(m.n.ctx, 10*time.Second)
	defer cancel()
	if err := m.n.host.Connect(ctx, ai); err != nil {
		m.n.log.Debug("mdns: cannot reach peer", "peer", ai.ID, "err", err)
		return
	}
	m.n.log.Debug("mdns: connected", "peer", ai.ID)
}
