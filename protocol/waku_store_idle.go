package protocol

import (
	"container/list"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// idleStreams tracks the Store v3 streams whose request has not begun,
// oldest first, and resets the oldest of a peer past perPeer, or the
// oldest of all past total. A small leaf structure behind its own mutex.
type idleStreams struct {
	mu      sync.Mutex
	perPeer int
	total   int
	order   *list.List // of idleStream, oldest first
	count   map[peer.ID]int
}

type idleStream struct {
	p peer.ID
	s network.Stream
}

func newIdleStreams(perPeer, total int) *idleStreams {
	return &idleStreams{perPeer: perPeer, total: total, order: list.New(), count: make(map[peer.ID]int)}
}

// add tracks s, a stream of p, and returns its handle for done.
func (t *idleStreams) add(p peer.ID, s network.Stream) *list.Element {
	t.mu.Lock()
	var evict []network.Stream
	if t.count[p] >= t.perPeer {
		for e := t.order.Front(); e != nil; e = e.Next() {
			if e.Value.(idleStream).p == p {
				evict = append(evict, t.remove(e))
				break
			}
		}
	}
	if t.order.Len() >= t.total {
		evict = append(evict, t.remove(t.order.Front()))
	}
	e := t.order.PushBack(idleStream{p: p, s: s})
	t.count[p]++
	t.mu.Unlock()
	for _, s := range evict {
		_ = s.Reset()
	}
	return e
}

// done stops tracking the stream of e, if it still is.
func (t *idleStreams) done(e *list.Element) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Value != nil {
		t.remove(e)
	}
}

// remove drops e, which must be tracked, and returns its stream. The
// caller holds t.mu.
func (t *idleStreams) remove(e *list.Element) network.Stream {
	is := t.order.Remove(e).(idleStream)
	e.Value = nil
	if t.count[is.p]--; t.count[is.p] == 0 {
		delete(t.count, is.p)
	}
	return is.s
}

// resetAll resets every tracked stream.
func (t *idleStreams) resetAll() {
	t.mu.Lock()
	var all []network.Stream
	for t.order.Len() > 0 {
		all = append(all, t.remove(t.order.Front()))
	}
	t.mu.Unlock()
	for _, s := range all {
		_ = s.Reset()
	}
}
