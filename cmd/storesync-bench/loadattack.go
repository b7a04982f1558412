package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio/protoio"

	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/protocol"
)

// kindLoadAttack is the child of -mode load that runs a.n hostile peers
// against the server at a.sender until the parent interrupts it.
const kindLoadAttack = "loadattack"

// runLoadAttack starts the hostile peers, reports a progress line once
// they have been attacking for a second, and runs them until interrupted
// or a.timeout.
func runLoadAttack(ctx context.Context, a childArgs, out *lineWriter) (res childResult, err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	target, err := peer.AddrInfoFromString(a.sender)
	if err != nil {
		return res, err
	}
	var wg sync.WaitGroup
	var tally attackTally
	for i := range a.n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = hostile(ctx, *target, i, &tally)
		}()
	}
	select {
	case <-time.After(time.Second): // the attacks under way
		out.write(childResult{Kind: kindProgress})
	case <-ctx.Done():
	}
	<-ctx.Done()
	wg.Wait()
	res.Sessions, res.Bytes = int(tally.runs.Load()), tally.bytes.Load()
	return res, nil
}

// attackTally counts what the hostile peers did: attacks run to their
// end, and bytes the server sent them.
type attackTally struct {
	runs, bytes atomic.Int64
}

// The attacks of -mode load, one per hostile peer, round-robin.
var attacks = []struct {
	name string
	// run makes one attack and returns the bytes the server sent.
	run func(ctx context.Context, h host.Host, p peer.ID) (int64, error)
}{
	{"endless turns", attackEndlessTurns},
	{"garbage", attackGarbage},
	{"stalled catch-up", attackStalledCatchUp},
	{"repeated full catch-up", attackFullCatchUp},
}

// hostile runs attack over and over from its own host until ctx ends,
// counting each run to its end in tally.
func hostile(ctx context.Context, target peer.AddrInfo, i int, tally *attackTally) error {
	h, err := libp2p.New(libp2p.ListenAddrStrings(loopback))
	if err != nil {
		return err
	}
	defer h.Close()
	a := attacks[i%len(attacks)]
	for ctx.Err() == nil {
		if err := h.Connect(ctx, target); err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		n, _ := a.run(ctx, h, target.ID)
		tally.bytes.Add(n)
		if ctx.Err() == nil {
			tally.runs.Add(1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// closeOnDone resets s when ctx ends, so that no attack outlives its phase.
func closeOnDone(ctx context.Context, s network.Stream) func() {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Reset()
		case <-done:
		}
	}()
	return func() { close(done); _ = s.Reset() }
}

// attackEndlessTurns asks about the whole scope again every turn: each
// turn makes the server read its ranges, until it cuts the session.
func attackEndlessTurns(ctx context.Context, h host.Host, p peer.ID) (int64, error) {
	s, err := h.NewStream(ctx, p, protocol.SyncID)
	if err != nil {
		return 0, err
	}
	defer closeOnDone(ctx, s)()
	id := benchScope.ID()
	ask := &pb.ReconcileFrame{Items: []*pb.RangeItem{{Mode: pb.Mode_FINGERPRINT, Fingerprint: make([]byte, 16), Count: 5}}}
	w, r := protoio.NewDelimitedWriter(s), protoio.NewDelimitedReader(s, 4<<20)
	if err := w.WriteMsg(&pb.SyncRequest{Scopes: []*pb.ScopeOpen{{Scope: id[:], First: ask}}}); err != nil {
		return 0, err
	}
	var got int64 // the frames' bytes, their length prefixes left out
	for {
		for {
			var f pb.SyncFrame
			if err := r.ReadMsg(&f); err != nil {
				return got, err
			}
			got += int64(f.Size())
			if f.Error != nil {
				return got, nil
			}
			if f.EndOfTurn {
				break
			}
		}
		if err := w.WriteMsg(&pb.SyncFrame{Scope: 0, Frame: ask}); err != nil {
			return got, err
		}
		if err := w.WriteMsg(&pb.SyncFrame{EndOfTurn: true}); err != nil {
			return got, err
		}
	}
}

// attackGarbage sends bytes that are no request, claiming a huge frame.
func attackGarbage(ctx context.Context, h host.Host, p peer.ID) (int64, error) {
	s, err := h.NewStream(ctx, p, protocol.SyncID)
	if err != nil {
		return 0, err
	}
	defer closeOnDone(ctx, s)()
	_, _ = s.Write([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3, 4, 5, 6, 7})
	return io.Copy(io.Discard, io.LimitReader(s, 1<<20))
}

// attackStalledCatchUp asks for the whole scope and reads nothing,
// holding a stream until the server's write deadline.
func attackStalledCatchUp(ctx context.Context, h host.Host, p peer.ID) (int64, error) {
	s, err := h.NewStream(ctx, p, protocol.CatchUpID)
	if err != nil {
		return 0, err
	}
	defer closeOnDone(ctx, s)()
	id := benchScope.ID()
	if err := protoio.NewDelimitedWriter(s).WriteMsg(&pb.CatchUpRequest{Scope: id[:]}); err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
	}
	return 0, nil
}

// attackFullCatchUp reads the whole scope and throws it away, again and
// again: what an honest catch-up costs the server, at the rate allowed.
func attackFullCatchUp(ctx context.Context, h host.Host, p peer.ID) (int64, error) {
	s, err := h.NewStream(ctx, p, protocol.CatchUpID)
	if err != nil {
		return 0, err
	}
	defer closeOnDone(ctx, s)()
	id := benchScope.ID()
	if err := protoio.NewDelimitedWriter(s).WriteMsg(&pb.CatchUpRequest{Scope: id[:], AcceptZstd: true}); err != nil {
		return 0, err
	}
	return io.Copy(io.Discard, s)
}
