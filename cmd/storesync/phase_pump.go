package main

import (
	"sync"

	"github.com/storesync/storesync/protocol"
)

// phasePump hands the progress of one export or import from the goroutine
// doing it to a writer goroutine, as progressPump does for a sync, but it
// keeps the latest event of each phase (an import may verify, then stores)
// rather than of each scope: a phase that ends before the writer is free
// still shows, and the phases come out in order. note never blocks. Safe
// for concurrent use.
type phasePump struct {
	mu      sync.Mutex // guards pending and closed
	pending []protocol.Progress
	closed  bool
	wake    chan struct{}
}

func newPhasePump() *phasePump { return &phasePump{wake: make(chan struct{}, 1)} }

// note records an event, replacing a pending one of the same phase; it is
// the callback for protocol.WithProgress.
func (p *phasePump) note(pr protocol.Progress) {
	p.mu.Lock()
	if n := len(p.pending); n > 0 && p.pending[n-1].Kind == pr.Kind {
		p.pending[n-1] = pr
	} else {
		p.pending = append(p.pending, pr)
	}
	p.mu.Unlock()
	p.signal()
}

// close makes run write what is pending and return.
func (p *phasePump) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.signal()
}

func (p *phasePump) signal() {
	select {
	case p.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// run calls write for the pending events, in order, until close.
func (p *phasePump) run(write func(protocol.Progress)) {
	for range p.wake {
		p.mu.Lock()
		events, closed := p.pending, p.closed
		p.pending = nil
		p.mu.Unlock()
		for _, e := range events {
			write(e)
		}
		if closed {
			return
		}
	}
}
