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
// each, in the background. With several peers, the scopes that need a
// catch-up (empty here, or stopped midway) are first streamed from all
// of them at once.
func (n *Node) goBootstrap(peers []peer.AddrInfo) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		var live []peer.ID
		for _, ai := range peers {
			if err := n.Connect(n.ctx, ai); err != nil {
				n.log.Warn("cannot reach peer", "peer", ai.ID, "err", err)
				continue
			}
			live = append(live, ai.ID)
		}
		if len(live) > 1 {
			for _, sc := range n.store.Scopes() {
				if !n.sync.NeedsCatchUp(n.ctx, sc) {
					continue
				}
				rep, err := n.CatchUp(n.ctx, sc, live...)
				if err != nil {
					n.log.Warn("start-up catch-up failed", "scope", sc, "err", err)
					continue
				}
				n.log.Info("start-up catch-up done", "scope", sc, "peers", len(live), "received", rep.Received, "took", rep.Duration)
			}
		}
		for _, p := range live {
			rep, err := n.SyncNow(n.ctx, p)
			if err != nil {
				n.log.Warn("start-up sync failed", "peer", p, "err", err)
				continue
			}
			n.log.Info("start-up sync done", "peer", p, "received", rep.Received(), "took", rep.Duration)
		}
	}()
}

// goWarmSketches fills the sketch memos of every scope's tree once, in
// the background (reconcile.Tree.WarmSketches): the first session after
// start-up that needs a sketch of a large range then reads a few nodes,
// not the scope. It reads each tree once, a top-level part at a time.
func (n *Node) goWarmSketches() {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for _, sc := range n.store.Scopes() {
			t, ok := n.store.Tree(sc)
			if !ok {
				continue
			}
			if err := t.WarmSketches(n.ctx); err != nil && n.ctx.Err() == nil {
				n.log.Warn("filling the sketch memos failed", "scope", sc, "err", err)
			}
		}
	}()
}
