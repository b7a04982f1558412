package main

import (
	"cmp"
	"slices"
	"sync"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// progressPump hands sync progress from the syncing goroutine to a
// writer goroutine. The protocol wants its progress callback to be quick,
// and a slow client must not slow the sync down, so note never blocks:
// it keeps only the latest event of each scope, and the writer takes
// whatever has piled up whenever it is free. Safe for concurrent use.
type progressPump struct {
	mu      sync.Mutex // guards pending and closed
	pending map[reconcile.Scope]protocol.Progress
	closed  bool
	wake    chan struct{}
}

func newProgressPump() *progressPump {
	return &progressPump{pending: make(map[reconcile.Scope]protocol.Progress), wake: make(chan struct{}, 1)}
}

// note records an event; it is the callback for protocol.WithProgress.
func (p *progressPump) note(pr protocol.Progress) {
	p.mu.Lock()
	p.pending[pr.Scope] = pr
	p.mu.Unlock()
	p.signal()
}

// close makes run write what is pending and return.
func (p *progressPump) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.signal()
}

func (p *progressPump) signal() {
	select {
	case p.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// run calls write for the pending events, in scope order, until close.
func (p *progressPump) run(write func(protocol.Progress)) {
	for range p.wake {
		events, closed := p.take()
		for _, e := range events {
			write(e)
		}
		if closed {
			return
		}
	}
}

// take returns the pending events, sorted by scope, and clears them.
func (p *progressPump) take() ([]protocol.Progress, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]protocol.Progress, 0, len(p.pending))
	for _, e := range p.pending {
		out = append(out, e)
	}
	clear(p.pending)
	slices.SortFunc(out, func(a, b protocol.Progress) int { return cmp.Compare(a.Scope.String(), b.Scope.String()) })
	return out, p.closed
}
