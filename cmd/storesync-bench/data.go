package main

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// Scope and shape of every generated message.
const (
	pubsubTopic  = "/waku/2/rs/1/0"
	contentTopic = "/storesync/1/bench/proto"
	payloadSize  = 160
	spacing      = 2600 * time.Millisecond
)

// The two ways the catching-up store can fall behind.
const (
	modeScattered = "scattered" // d messages missing at random
	modeRecent    = "recent"    // the newest d messages missing
)

// generate returns n messages in strictly increasing timestamp order: one
// every 2.6 s from 2026-01-01 plus a jitter below 2.6 s, so about 30 days
// for a million, each with a random payload.
func generate(n int, seed uint64) []reconcile.Message {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	// One allocation for every payload: a million small ones would only
	// add garbage-collector work to the measurements.
	slab := make([]byte, n*payloadSize)
	out := make([]reconcile.Message, n)
	for i := range out {
		p := slab[i*payloadSize : (i+1)*payloadSize : (i+1)*payloadSize]
		fillRandom(r, p)
		out[i] = reconcile.Message{
			PubsubTopic:  pubsubTopic,
			ContentTopic: contentTopic,
			Payload:      p,
			Timestamp:    base + int64(i)*int64(spacing) + r.Int64N(int64(spacing)),
		}
	}
	return out
}

// fillRandom fills p from r, eight bytes per draw.
func fillRandom(r *rand.Rand, p []byte) {
	for j := 0; j < len(p); j += 8 {
		v := r.Uint64()
		for k := 0; k < 8 && j+k < len(p); k++ {
			p[j+k] = byte(v >> (8 * k))
		}
	}
}

// keysOf returns the tree keys of messages, in the messages' order.
func keysOf(msgs []reconcile.Message) []reconcile.Key {
	out := make([]reconcile.Key, len(msgs))
	for i := range msgs {
		out[i] = reconcile.Key{TS: uint64(msgs[i].Timestamp), Hash: msgs[i].Hash()}
	}
	return out
}

// benchCase is one row of the table.
type benchCase struct {
	mode string // modeScattered or modeRecent
	d    int
}

// missing returns the ascending indices of the messages the catching-up
// store lacks. A scattered case draws them from its own stream of the
// seed, so that every case is reproducible on its own.
func (c benchCase) missing(n int, seed uint64) []int {
	if c.mode == modeRecent {
		out := make([]int, c.d)
		for i := range out {
			out[i] = n - c.d + i
		}
		return out
	}
	r := rand.New(rand.NewPCG(seed, uint64(c.d)))
	out := r.Perm(n)[:c.d]
	slices.Sort(out)
	return out
}
