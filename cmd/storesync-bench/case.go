package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nbd-wtf/go-nostr/nip77/negentropy"

	"github.com/storesync/storesync/reconcile"
)

// frameLimit is the frame size limit of both implementations.
const frameLimit = 1 << 20

// runCase thins out store B, reconciles it with A both ways (storesync
// and negentropy, B initiating as the node that catches up), checks that
// both found exactly the missing set, restores B and returns the line.
func runCase(ctx context.Context, s *stores, msgs []reconcile.Message, c benchCase, seed uint64) (string, error) {
	idx := c.missing(len(s.keys), seed)
	miss := make([]reconcile.Key, len(idx))
	skip := make(map[int]bool, len(idx))
	want := make([]string, len(idx))
	for i, j := range idx {
		miss[i] = s.keys[j]
		skip[j] = true
		want[i] = s.keys[j].Hash.String()
	}
	slices.Sort(want)
	if _, _, err := s.b.Apply(ctx, nil, miss); err != nil {
		return "", err
	}

	p := reconcile.DefaultParams()
	p.FrameSize = frameLimit
	start := time.Now()
	ini, res, st, err := reconcile.Reconcile(ctx, s.b, s.a, reconcile.Key{}, reconcile.End, p)
	secs := time.Since(start).Seconds()
	if err != nil {
		return "", err
	}
	if err := sameSet("storesync initiator need", hexes(ini.Need), want); err != nil {
		return "", err
	}
	if err := sameSet("storesync responder have", hexes(res.Have), want); err != nil {
		return "", err
	}
	if len(ini.Have)+len(res.Need) != 0 {
		return "", errors.New("storesync reports messages the full store lacks")
	}

	if _, _, err := s.b.Apply(ctx, miss, nil); err != nil {
		return "", err
	}
	if s.a.Root() != s.b.Root() {
		return "", errors.New("store B did not return to the full set")
	}

	nb, nrt, lacks, extra, err := runNegentropy(negentropyStore(s.keys, skip), s.vecA)
	if err != nil {
		return "", err
	}
	if err := sameSet("negentropy need", lacks, want); err != nil {
		return "", err
	}
	if len(extra) != 0 {
		return "", errors.New("negentropy reports messages the full store lacks")
	}

	bytes := st.InitiatorBytes + st.ResponderBytes
	lb := int64(c.d) * 32
	return fmt.Sprintf("case=%s n=%d d=%d bytes=%d roundtrips=%d lowerbound=%d ratio=%s negentropy_bytes=%d negentropy_roundtrips=%d initiator_bytes=%d responder_bytes=%d negentropy_ratio=%s seconds=%.2f",
		c.mode, len(s.keys), c.d, bytes, st.RoundTrips, lb, ratio(bytes, lb), nb, nrt,
		st.InitiatorBytes, st.ResponderBytes, ratio(nb, lb), secs), nil
}

func ratio(bytes, lowerBound int64) string {
	if lowerBound == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(bytes)/float64(lowerBound))
}

func hexes(hs []reconcile.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	slices.Sort(out)
	return out
}

func sameSet(what string, got, want []string) error {
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s: found %d messages, want the %d missing ones", what, len(got), len(want))
	}
	return nil
}

// runNegentropy reconciles client (the behind store) with server and
// returns the bytes both ways (hex decoded, plus a varint length prefix
// per message, as storesync's frames count), the round trips, and the
// sorted IDs the client lacks and has in excess.
func runNegentropy(client, server negentropy.Storage) (bytes int64, roundTrips int, lacks, extra []string, err error) {
	c := negentropy.New(client, frameLimit)
	sv := negentropy.New(server, frameLimit)
	// The client reports through channels that block when full.
	done := make(chan struct{}, 2)
	go func() {
		for id := range c.HaveNots {
			lacks = append(lacks, id)
		}
		done <- struct{}{}
	}()
	go func() {
		for id := range c.Haves {
			extra = append(extra, id)
		}
		done <- struct{}{}
	}()
	wire := func(hexMsg string) int64 {
		n := len(hexMsg) / 2
		var b [binary.MaxVarintLen64]byte
		return int64(n + binary.PutUvarint(b[:], uint64(n)))
	}
	msg := c.Start()
	messages := 0
	for {
		messages++
		bytes += wire(msg)
		reply, err := sv.Reconcile(msg)
		if err != nil {
			return 0, 0, nil, nil, fmt.Errorf("negentropy server: %w", err)
		}
		messages++
		bytes += wire(reply)
		next, err := c.Reconcile(reply)
		if err != nil {
			return 0, 0, nil, nil, fmt.Errorf("negentropy client: %w", err)
		}
		if next == "" {
			break
		}
		msg = next
	}
	<-done
	<-done
	slices.Sort(lacks)
	slices.Sort(extra)
	return bytes, (messages + 1) / 2, lacks, extra, nil
}
