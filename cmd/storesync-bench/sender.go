package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/node"
)

// sender is the catch-up's full node, in this process: a node.New over
// its own LevelDB, listening on 127.0.0.1, holding n messages.
type sender struct {
	node  *node.Node
	dir   string
	addr  string // full multiaddr, ending in /p2p/<peer ID>
	count uint64
	root  string // hex
	build loadTiming
}

// startSender starts the sender and fills its store with n messages of
// the seed through node.Store.Put in batches of ingestBatch, timing the
// Puts.
func startSender(ctx context.Context, work string, n int, seed uint64) (s *sender, err error) {
	dir, err := os.MkdirTemp(work, "sender-")
	if err != nil {
		return nil, err
	}
	s = &sender{dir: dir}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.node, err = node.New(ctx, node.WithDataDir(dir), node.WithScopes(benchScope), node.WithListenAddrs(loopback))
	if err != nil {
		return s, err
	}
	g := newGenerator(seed, livePayloadSize, 1)
	if s.build, err = timedLoad(ctx, g, n, ingestBatch, storePut(s.node.Store())); err != nil {
		return s, fmt.Errorf("build the sender's store: %w", err)
	}
	st, _ := s.node.Store().Stats(benchScope)
	if st.Count != uint64(n) {
		return s, fmt.Errorf("the sender's store holds %d messages, want %d", st.Count, n)
	}
	s.count, s.root = st.Count, hex.EncodeToString(st.Root[:])
	addrs := s.node.Addrs()
	if len(addrs) == 0 {
		return s, fmt.Errorf("the sender has no address")
	}
	s.addr = addrs[0].String()
	return s, nil
}

// close stops the sender and removes its store.
func (s *sender) close() error {
	var err error
	if s.node != nil {
		err = s.node.Close()
	}
	os.RemoveAll(s.dir)
	return err
}

// rawStream runs the raw-stream child and sends it stream (from
// encodeRawCopy) once it has connected.
func (s *sender) rawStream(ctx context.Context, a childArgs, stream []byte) (childRun, error) {
	conns := make(chan peer.ID, 1)
	h := s.node.Host()
	nb := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		select {
		case conns <- c.RemotePeer():
		default:
		}
	}}
	h.Network().Notify(nb)
	defer h.Network().StopNotify(nb)

	type result struct {
		run childRun
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := spawn(ctx, a, nil)
		done <- result{r, err}
	}()
	var sendErr error
	select {
	case r := <-done: // ended before connecting; its error says why
		if r.err == nil && r.run.err == nil {
			r.run.err = fmt.Errorf("raw-stream child ended without connecting")
		}
		return r.run, r.err
	case p := <-conns:
		sctx, cancel := context.WithTimeout(ctx, a.timeout)
		sendErr = sendRawCopy(sctx, h, p, stream)
		cancel()
	}
	r := <-done
	// The child's check that it read all n messages decides: once it has,
	// it exits, and its connection may close before the sender sees its
	// stream close, which the sender sees as a reset. The sender's error
	// only explains a child that failed.
	if sendErr != nil && r.run.err != nil {
		r.run.err = fmt.Errorf("%w (the sender: %w)", r.run.err, sendErr)
	}
	return r.run, r.err
}
