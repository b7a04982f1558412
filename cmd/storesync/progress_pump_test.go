package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

func TestProgressPumpKeepsLatestPerScope(t *testing.T) {
	a := reconcile.Scope{PubsubTopic: "/p", ContentTopic: "/a"}
	b := reconcile.Scope{PubsubTopic: "/p", ContentTopic: "/b"}
	p := newProgressPump()
	// Everything noted before the writer runs piles up: only the latest
	// event of each scope is left, and note never blocked.
	for i := range 100 {
		p.note(protocol.Progress{Scope: b, Done: i, Total: 100})
		p.note(protocol.Progress{Scope: a, Done: i, Total: 100})
	}
	p.close()
	var got []protocol.Progress
	p.run(func(pr protocol.Progress) { got = append(got, pr) })
	require.Equal(t, []protocol.Progress{{Scope: a, Done: 99, Total: 100}, {Scope: b, Done: 99, Total: 100}}, got)
}

func TestProgressPumpDeliversWhileRunning(t *testing.T) {
	sc := reconcile.Scope{PubsubTopic: "/p", ContentTopic: "/a"}
	p := newProgressPump()
	seen := make(chan int)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(func(pr protocol.Progress) { seen <- pr.Done })
	}()
	for i := 1; i <= 3; i++ {
		p.note(protocol.Progress{Scope: sc, Done: i, Total: 3})
		require.Equal(t, i, <-seen)
	}
	p.close()
	<-done
}
