package main

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// Scope and shape of every generated message. The table uses 160-byte
// payloads; store ingest and catch-up use 256-byte ones, the size their
// targets are stated at.
const (
	pubsubTopic     = "/waku/2/rs/1/0"
	contentTopic    = "/storesync/1/bench/proto"
	payloadSize     = 160
	livePayloadSize = 256
	spacing         = 2600 * time.Millisecond
)

// benchScope is the scope of every message when there is one scope.
var benchScope = reconcile.Scope{PubsubTopic: pubsubTopic, ContentTopic: contentTopic}

// The ways the two stores can differ.
const (
	modeScattered = "scattered" // B misses d messages at random
	modeRecent    = "recent"    // B misses the newest d messages
	modeTwoWay    = "twoway"    // each misses d/2 the other holds, at random
	modeDisjoint  = "disjoint"  // each holds half of the messages, at random
)

// generate returns n messages with 160-byte payloads in one scope, in
// strictly increasing timestamp order (see generator): about 30 days for a
// million. The table keeps every message, so all payloads share one
// allocation: a million small ones would only add garbage-collector work
// to the measurements.
func generate(n int, seed uint64) []reconcile.Message {
	out := make([]reconcile.Message, n)
	newGenerator(seed, payloadSize, 1).fillWith(out, make([]byte, n*payloadSize))
	return out
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
	mode string // modeScattered, modeRecent, modeTwoWay or modeDisjoint
	d    int
}

// missing returns the ascending indices of the messages store B lacks
// and of those store A lacks. A random case draws them from its own
// stream of the seed, so that every case is reproducible on its own.
func (c benchCase) missing(n int, seed uint64) (fromB, fromA []int) {
	switch c.mode {
	case modeRecent:
		fromB = make([]int, c.d)
		for i := range fromB {
			fromB[i] = n - c.d + i
		}
		return fromB, nil
	case modeScattered:
		r := rand.New(rand.NewPCG(seed, uint64(c.d)))
		fromB = draw(r, n, c.d)
		slices.Sort(fromB)
		return fromB, nil
	}
	r := rand.New(rand.NewPCG(seed, uint64(c.d)+1<<40))
	drawn := draw(r, n, c.d)
	fromB, fromA = drawn[:c.d/2:c.d/2], drawn[c.d/2:]
	slices.Sort(fromB)
	slices.Sort(fromA)
	return fromB, fromA
}

// draw returns d distinct indices below n, in random order. A small d is
// drawn by Floyd's algorithm in O(d): a permutation of all n would write
// n ints (80 MB at 10 million) right before each session, pushing the
// stores' nodes out of the processor's caches and feeding the garbage
// collector, at a cost that grows with n and that no node pays before a
// session.
func draw(r *rand.Rand, n, d int) []int {
	if 4*d > n {
		return r.Perm(n)[:d]
	}
	seen := make(map[int]struct{}, d)
	out := make([]int, 0, d)
	for j := n - d; j < n; j++ {
		t := r.IntN(j + 1)
		if _, ok := seen[t]; ok {
			t = j
		}
		seen[t] = struct{}{}
		out = append(out, t)
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
