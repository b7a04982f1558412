package main

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip77/negentropy"
	"github.com/nbd-wtf/go-nostr/nip77/negentropy/storage/vector"

	"github.com/storesync/storesync/reconcile"
)

// maxBaselineMessages stops a negentropy session that does not end; a
// healthy one over a million items takes a dozen or so.
const maxBaselineMessages = 1000

// baseline holds the negentropy side of the benchmark: the items of every
// message, and the full store A, which every case shares.
type baseline struct {
	stamps []nostr.Timestamp
	ids    []string // lower-case hex hashes, shared by every vector
	full   *vector.Vector
}

// newBaseline prepares the items of keys and seals the full store.
//
// Items carry the keys' timestamps in seconds, negentropy's own unit: its
// varint encoder holds at most 56 bits and panics on a Unix time in
// nanoseconds (about 2^61). Seconds also give its range bounds their
// smallest encoding, so the baseline is not made to look worse than it
// is. The set of IDs, which is what both sides reconcile, is unchanged.
func newBaseline(keys []reconcile.Key) *baseline {
	b := &baseline{stamps: make([]nostr.Timestamp, len(keys)), ids: make([]string, len(keys))}
	for i := range keys {
		b.stamps[i] = nostr.Timestamp(keys[i].TS / uint64(time.Second))
		b.ids[i] = keys[i].Hash.String()
	}
	b.full = b.vector(nil)
	return b
}

// vector returns a sealed store of every item but the ascending indices
// in skip.
func (b *baseline) vector(skip []int) *vector.Vector {
	v := vector.New()
	for i := range b.ids {
		if len(skip) > 0 && skip[0] == i {
			skip = skip[1:]
			continue
		}
		v.Insert(b.stamps[i], b.ids[i])
	}
	v.Seal()
	return v
}

// baselineResult is what one negentropy session cost and found.
type baselineResult struct {
	bytes      int64
	messages   int
	roundTrips int
	seconds    float64
	haves      []string // sorted: what the client holds and the server lacks
	haveNots   []string // sorted: what the client lacks
}

// runBaseline reconciles a store lacking the ascending indices in skip
// (the client, as the node catching up) with a store lacking those in
// serverSkip (the server; the full store when there are none).
func (b *baseline) runBaseline(skip, serverSkip []int) (baselineResult, error) {
	client := negentropy.New(b.vector(skip), frameLimit)
	full := b.full
	if len(serverSkip) > 0 {
		full = b.vector(serverSkip)
	}
	server := negentropy.New(full, frameLimit)

	// The client reports through buffered channels and blocks once one
	// is full, so both must be drained while the session runs. It closes
	// them when it is done; on an error it never does, and the
	// goroutines are left behind, which a failing run can afford.
	var r baselineResult
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for id := range client.Haves {
			r.haves = append(r.haves, id)
		}
	}()
	go func() {
		defer wg.Done()
		for id := range client.HaveNots {
			r.haveNots = append(r.haveNots, id)
		}
	}()

	start := time.Now()
	msg := client.Start()
	r.count(msg)
	for {
		if r.messages >= maxBaselineMessages {
			return r, fmt.Errorf("negentropy: no end after %d messages", r.messages)
		}
		reply, err := server.Reconcile(msg)
		if err != nil {
			return r, fmt.Errorf("negentropy server: %w", err)
		}
		r.count(reply)
		// The client returns "" once it has nothing more to say; the
		// reply it just handled was the last message.
		next, err := client.Reconcile(reply)
		if err != nil {
			return r, fmt.Errorf("negentropy client: %w", err)
		}
		if next == "" {
			break
		}
		r.count(next)
		msg = next
	}
	r.seconds = time.Since(start).Seconds()
	wg.Wait()
	r.roundTrips = (r.messages + 1) / 2
	slices.Sort(r.haves)
	slices.Sort(r.haveNots)
	return r, nil
}

// count adds a message to the totals. Negentropy messages travel as hex
// text; the binary size plus a varint length prefix is what a stream
// would carry, and is how storesync's frames are counted.
func (r *baselineResult) count(hexMsg string) {
	n := len(hexMsg) / 2
	var p [binary.MaxVarintLen64]byte
	r.bytes += int64(n + binary.PutUvarint(p[:], uint64(n)))
	r.messages++
}
