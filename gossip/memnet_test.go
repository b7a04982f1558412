package gossip_test

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/gossip"
)

// memBus is an in-memory gossip network for tests: every member of a
// topic gets every announcement another publishes, unless drop says no.
type memBus struct {
	mu     sync.Mutex
	topics map[string][]*memTopic
	drop   func(from peer.ID, data []byte) bool
}

func newMemBus(drop func(peer.ID, []byte) bool) *memBus {
	return &memBus{topics: map[string][]*memTopic{}, drop: drop}
}

// network returns the gossip.Network of one peer on the bus.
func (b *memBus) network(self peer.ID) gossip.Network { return memNet{b, self} }

type memNet struct {
	bus  *memBus
	self peer.ID
}

type envelope struct {
	from peer.ID
	data []byte
}

type memTopic struct {
	bus      *memBus
	name     string
	self     peer.ID
	validate func(peer.ID, []byte) error
	in       chan envelope
	joins    chan peer.ID
	done     chan struct{}
	once     sync.Once
}

func (n memNet) Join(topic string, validate func(peer.ID, []byte) error) (gossip.Topic, error) {
	t := &memTopic{bus: n.bus, name: topic, self: n.self, validate: validate,
		in: make(chan envelope, 1024), joins: make(chan peer.ID, 1024), done: make(chan struct{})}
	n.bus.mu.Lock()
	for _, o := range n.bus.topics[topic] {
		o.joins <- n.self
		t.joins <- o.self
	}
	n.bus.topics[topic] = append(n.bus.topics[topic], t)
	n.bus.mu.Unlock()
	return t, nil
}

func (t *memTopic) Publish(_ context.Context, data []byte) error {
	t.bus.mu.Lock()
	defer t.bus.mu.Unlock()
	if t.bus.drop != nil && t.bus.drop(t.self, data) {
		return nil
	}
	for _, o := range t.bus.topics[t.name] {
		if o != t && o.validate(t.self, data) == nil {
			select {
			case o.in <- envelope{t.self, data}:
			default:
			}
		}
	}
	return nil
}

func (t *memTopic) Next(ctx context.Context) (peer.ID, []byte, error) {
	select {
	case e := <-t.in:
		return e.from, e.data, nil
	case <-ctx.Done():
		return "", nil, ctx.Err()
	case <-t.done:
		return "", nil, context.Canceled
	}
}

func (t *memTopic) NextJoin(ctx context.Context) (peer.ID, error) {
	select {
	case p := <-t.joins:
		return p, nil
	case <-ctx.Done():
		return "", ctx.Err()
	case <-t.done:
		return "", context.Canceled
	}
}

func (t *memTopic) Peers() []peer.ID {
	t.bus.mu.Lock()
	defer t.bus.mu.Unlock()
	var out []peer.ID
	for _, o := range t.bus.topics[t.name] {
		if o != t {
			out = append(out, o.self)
		}
	}
	return out
}

func (t *memTopic) Close() error {
	t.once.Do(func() {
		close(t.done)
		t.bus.mu.Lock()
		defer t.bus.mu.Unlock()
		list := t.bus.topics[t.name]
		for i, o := range list {
			if o == t {
				t.bus.topics[t.name] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
	})
	return nil
}
