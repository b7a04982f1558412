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

// The two ways the catching-up store can fall behind.
const (
	modeScattered = "scattered" // d messages missing at random
	modeRecent    = "recent"    // the newest d messages missing
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
