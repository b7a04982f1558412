package node

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/storesync/storesync/reconcile"
)

// Subscription delivers the messages added to a Store after it was made;
// see Store.Subscribe. Its methods are safe for concurrent use.
type Subscription struct {
	c       chan reconcile.Message
	hub     *hub
	dropped atomic.Uint64

	// mu orders deliveries and the closing of c, so that a send never
	// meets a closed channel.
	mu     sync.Mutex
	closed bool
	stop   func() bool // stops the watch on the context
}

// C returns the channel of added messages. It is closed when the
// subscription ends (Cancel, the end of its context, or Store.Close).
// Messages share their Payload and Meta with other receivers: read them,
// do not modify them.
func (sub *Subscription) C() <-chan reconcile.Message { return sub.c }

// Dropped returns how many messages were lost because the subscriber had
// fallen a whole buffer behind.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Cancel ends the subscription and closes C. Calling it again does
// nothing.
func (sub *Subscription) Cancel() {
	sub.hub.remove(sub)
	sub.end()
}

// end closes the channel and stops the context watch, once.
func (sub *Subscription) end() {
	sub.mu.Lock()
	stop := sub.stop
	sub.stop = nil
	if !sub.closed {
		sub.closed = true
		close(sub.c)
	}
	sub.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// deliver offers messages without ever blocking: a full buffer drops.
func (sub *Subscription) deliver(msgs []reconcile.Message, idx []int) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed {
		return
	}
	for _, i := range idx {
		select {
		case sub.c <- msgs[i]:
		default:
			sub.dropped.Add(1)
		}
	}
}

// Subscribe delivers every message added from now on (by any Put, whatever
// its source, in the order of the commits of each scope) until Cancel is
// called, ctx ends or the store closes. A subscriber that falls more than
// buffer messages behind loses messages rather than blocking writers;
// Dropped says how many. A buffer below 1 counts as 1. Subscribing to a
// closed store returns an ended subscription.
func (s *Store) Subscribe(ctx context.Context, buffer int) *Subscription {
	sub := &Subscription{c: make(chan reconcile.Message, max(buffer, 1)), hub: &s.subs}
	if !s.subs.add(sub) {
		sub.end()
		return sub
	}
	stop := context.AfterFunc(ctx, sub.Cancel)
	sub.mu.Lock()
	if sub.closed {
		// Ended already, by ctx or by Close, before the watch was kept.
		sub.mu.Unlock()
		stop()
		return sub
	}
	sub.stop = stop
	sub.mu.Unlock()
	return sub
}

// hub holds the live subscriptions of a Store.
type hub struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

func (h *hub) init() { h.subs = make(map[*Subscription]struct{}) }

// add registers sub unless the hub is closed.
func (h *hub) add(sub *Subscription) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.subs[sub] = struct{}{}
	return true
}

func (h *hub) remove(sub *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
}

// publish hands msgs[idx] to every subscription. It delivers outside the
// hub's lock, so subscribing and cancelling never wait on a delivery.
func (h *hub) publish(msgs []reconcile.Message, idx []int) {
	if len(idx) == 0 {
		return
	}
	h.mu.Lock()
	subs := make([]*Subscription, 0, len(h.subs))
	for sub := range h.subs {
		subs = append(subs, sub)
	}
	h.mu.Unlock()
	for _, sub := range subs {
		sub.deliver(msgs, idx)
	}
}

// close ends every subscription and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	subs := h.subs
	h.subs = make(map[*Subscription]struct{})
	h.mu.Unlock()
	for sub := range subs {
		sub.end()
	}
}
