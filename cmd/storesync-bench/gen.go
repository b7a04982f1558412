package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// generator draws the benchmark's messages one after another: message i
// has a random payload and a timestamp spacing × i plus a jitter below
// spacing after 2020-01-01, so timestamps strictly increase. The same seed,
// payload size and scope count give the same sequence whatever the batch
// sizes it is drawn in, which lets a child process rebuild the messages
// its parent holds from the seed alone, without holding them all.
type generator struct {
	r       *rand.Rand
	base    int64
	next    int // index of the next message
	payload int
	topics  []string // content topics, message i in topics[i % len]
	slab    []byte   // payloads of the last fill
}

// newGenerator returns a generator of messages with payload-byte payloads
// spread round-robin over scopes scopes (content topics) of one pubsub
// topic. With one scope, the scope is benchScope.
func newGenerator(seed uint64, payload, scopes int) *generator {
	g := &generator{
		r:       rand.New(rand.NewPCG(seed, 0x5eed)),
		base:    time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(),
		payload: payload,
		topics:  []string{contentTopic},
	}
	if scopes > 1 {
		g.topics = make([]string, scopes)
		for i := range g.topics {
			g.topics[i] = fmt.Sprintf("/storesync/1/bench-%d/proto", i)
		}
	}
	return g
}

// scopes returns the scopes the generator spreads messages over, in the
// order it cycles through them.
func (g *generator) scopes() []reconcile.Scope {
	out := make([]reconcile.Scope, len(g.topics))
	for i, t := range g.topics {
		out[i] = reconcile.Scope{PubsubTopic: pubsubTopic, ContentTopic: t}
	}
	return out
}

// fill overwrites msgs with the next len(msgs) messages. Their payloads
// live in a buffer that the next fill reuses: the caller must be done with
// the messages (a Put has returned) before filling again.
func (g *generator) fill(msgs []reconcile.Message) {
	if need := len(msgs) * g.payload; cap(g.slab) < need {
		g.slab = make([]byte, need)
	}
	g.fillWith(msgs, g.slab[:len(msgs)*g.payload])
}

// fillWith is fill with the payloads in slab, which must hold len(msgs)
// payloads and stays the caller's.
func (g *generator) fillWith(msgs []reconcile.Message, slab []byte) {
	sz := g.payload
	for i := range msgs {
		p := slab[i*sz : (i+1)*sz : (i+1)*sz]
		fillRandom(g.r, p)
		msgs[i] = reconcile.Message{
			PubsubTopic:  pubsubTopic,
			ContentTopic: g.topics[g.next%len(g.topics)],
			Payload:      p,
			Timestamp:    g.base + int64(g.next)*int64(spacing) + g.r.Int64N(int64(spacing)),
		}
		g.next++
	}
}

// fillRandom fills p from r, eight bytes per draw, little-endian.
func fillRandom(r *rand.Rand, p []byte) {
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, r.Uint64())
		p = p[8:]
	}
	if len(p) > 0 {
		v := r.Uint64()
		for k := range p {
			p[k] = byte(v >> (8 * k))
		}
	}
}
