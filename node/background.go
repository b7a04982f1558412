package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// goRetention deletes old messages every interval until the node closes.
func (n *Node) goRetention(keep, every time.Duration) {
	if every <= 0 {
		every = min(max(keep/10, time.Second), time.Hour)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			n.applyRetention(keep)
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (n *Node) applyRetention(keep time.Duration) {
	cutoff := time.Now().Add(-keep).UnixNano()
	for _, sc := range n.store.Scopes() {
		removed, err := n.store.DeleteBefore(n.ctx, sc, cutoff)
		switch {
		case err != nil && n.ctx.Err() == nil:
			n.log.Warn("retention failed", "scope", sc, "err", err)
		case removed > 0:
			n.log.Debug("retention removed messages", "scope", sc, "count", removed)
		}
	}
}

// goBootstrap connects to the given peers and syncs every scope with
// each, in the background.
func (n *Node) goBootstrap(peers []peer.AddrInfo) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for _, ai := range peers {
			if err := n.Connect(n.ctx, ai); err != nil {
				n.log.Warn("cannot reach peer", "peer", ai.ID, "err", err)
				continue
			}
			rep, err := n.SyncNow(n.ctx, ai.ID)
			if err != nil {
				n.log.Warn("start-up sync failed", "peer", ai.ID, "err", err)
				continue
			}
			n.log.Info("start-up sync done", "peer", ai.ID, "received", rep.Received(), "took", rep.Duration)
		}
	}()
}
