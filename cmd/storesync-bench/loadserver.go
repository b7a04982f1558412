package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/storesync/storesync/node"
)

// kindLoadServer is the child of -mode load: a node serving the store the
// parent built, until the parent interrupts it.
const kindLoadServer = "loadserver"

// runLoadServer opens the store in a.dir, serves it on a node listening
// on 127.0.0.1, reports the node's address as a progress line (Addr), and
// serves until interrupted or a.timeout.
func runLoadServer(ctx context.Context, a childArgs, out *lineWriter) (res childResult, err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := node.OpenLevelDB(a.dir)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, d.Close()) }()
	n, err := node.New(ctx, node.WithDatastore(d), node.WithListenAddrs(loopback))
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, n.Close()) }()
	out.write(childResult{Kind: kindProgress, Addr: n.Host().Addrs()[0].String() + "/p2p/" + n.Host().ID().String()})
	<-ctx.Done()
	return res, nil
}
