package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// loopback is where every host of the benchmark listens.
const loopback = "/ip4/127.0.0.1/tcp/0"

// maxIdleSessions is how many sessions in a row may receive nothing
// before the receiver gives up: catch-up has stalled.
const maxIdleSessions = 3

// progressEvery is how often a receiver with -progress reports its count.
const progressEvery = 20 * time.Millisecond

// runReceiver is the catch-up child: it opens a node with its own
// LevelDB in a.dir keeping the bench scope, connects to the sender and
// calls SyncNow until its count and root equal the sender's (a.count and
// a.root). A.dir may hold what an earlier, killed receiver stored. It
// fails on the first failed session, or when sessions stop bringing
// messages.
func runReceiver(ctx context.Context, a childArgs, out *lineWriter) (res childResult, err error) {
	want, err := hex.DecodeString(a.root)
	if err != nil || len(want) != reconcile.FingerprintSize {
		return res, fmt.Errorf("bad -root %q", a.root)
	}
	sender, err := peer.AddrInfoFromString(a.sender)
	if err != nil {
		return res, fmt.Errorf("bad -sender: %w", err)
	}
	n, err := node.New(ctx, node.WithDataDir(a.dir), node.WithScopes(benchScope), node.WithListenAddrs(loopback))
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := n.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	st, _ := n.Store().Stats(benchScope)
	res.StartCount = st.Count
	if a.progress {
		defer reportProgress(n.Store(), out)()
	}

	t0 := time.Now()
	if err := n.Connect(ctx, *sender); err != nil {
		return res, fmt.Errorf("connect to the sender: %w", err)
	}
	res.ConnectSeconds = time.Since(t0).Seconds()
	start := time.Now()
	defer func() { res.Seconds = time.Since(start).Seconds() }()
	idle := 0
	for {
		st, _ = n.Store().Stats(benchScope)
		res.Count, res.Root = st.Count, hex.EncodeToString(st.Root[:])
		if st.Count >= a.count {
			break
		}
		if idle == maxIdleSessions {
			return res, fmt.Errorf("%d sessions in a row received nothing; %d of %d messages stored", idle, st.Count, a.count)
		}
		rep, err := n.SyncNow(ctx, sender.ID, benchScope)
		res.Sessions++
		if rep != nil {
			for _, s := range rep.Scopes {
				res.Bytes += s.Bytes
				res.Messages += s.Received
				res.Rejected += s.Rejected
			}
			if err == nil {
				err = rep.Err()
			}
		}
		if err != nil {
			st, _ = n.Store().Stats(benchScope)
			res.Count, res.Root = st.Count, hex.EncodeToString(st.Root[:])
			return res, fmt.Errorf("session %d failed with %d of %d messages stored: %w", res.Sessions, st.Count, a.count, err)
		}
		idle++
		if rep.Received() > 0 {
			idle = 0
		}
	}
	if st.Count != a.count || hex.EncodeToString(st.Root[:]) != a.root {
		return res, fmt.Errorf("ended with %d messages and root %x, want %d and %s", st.Count, st.Root, a.count, a.root)
	}
	return res, nil
}

// reportProgress prints the store's count as a progress line whenever it
// has changed, every progressEvery, until the returned function is
// called. The parent of a kill run picks its moments from these lines.
func reportProgress(s *node.Store, out *lineWriter) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		var last uint64
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if st, ok := s.Stats(benchScope); ok && st.Count != last {
				last = st.Count
				out.write(childResult{Kind: kindProgress, Count: st.Count})
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
