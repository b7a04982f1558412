package main

import (
	"context"
	"fmt"
	"os"
)

// background is a child process of -mode load that runs beside the
// measured clients until the parent interrupts it: the server, or the
// hostile peers.
type background struct {
	proc   *os.Process
	ready  childResult // its first progress line
	exited chan childRun
}

// startBackground spawns a child and waits for its first progress line,
// which says it is ready. It fails if the child exits first.
func startBackground(ctx context.Context, a childArgs) (*background, error) {
	b := &background{exited: make(chan childRun, 1)}
	ready := make(chan childResult, 1)
	go func() {
		r, err := spawn(ctx, a, func(p *os.Process, line childResult) {
			if b.proc == nil {
				b.proc = p
				ready <- line
			}
		})
		if err != nil && r.err == nil {
			r.err = err
		}
		b.exited <- r
	}()
	select {
	case b.ready = <-ready:
		return b, nil
	case r := <-b.exited:
		return nil, fmt.Errorf("%s child: %v", a.kind, r.err)
	}
}

// stop interrupts the child and returns how it ran.
func (b *background) stop() childRun {
	_ = b.proc.Signal(os.Interrupt)
	return <-b.exited
}
