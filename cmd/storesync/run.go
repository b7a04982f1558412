package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

const (
	defaultDataDir      = "./storesync-data"
	defaultPubsubTopic  = "/waku/2/default-waku/proto"
	defaultContentTopic = "/storesync/1/demo/proto"
	// shutdownTimeout bounds how long a stopping node waits for requests
	// on its control socket and metrics endpoint to finish.
	shutdownTimeout = 5 * time.Second
	// mdnsTag is the mDNS service name demo nodes find each other by.
	mdnsTag = "storesync"
)

// runFlags are the settings of `storesync run`.
type runFlags struct {
	dataDir     string
	listen      stringList
	peers       stringList
	pubsubTopic string
	topics      topicsAndGroups
	interval    time.Duration
	mdns        bool
	metricsAddr string
	retention   time.Duration
	window      time.Duration
	settle      time.Duration
	maxMessage  int
	maxSkew     time.Duration
	verify      bool
	keyIndex    bool
	edge        edgeFlags
	// autoshard, when set, gives each content topic its pubsub topic in
	// place of --pubsub-topic (run --relay without it).
	autoshard func(contentTopic string) (string, error)
}

// runNode starts a store node and serves it until ctx ends (SIGINT or
// SIGTERM), then stops it cleanly.
func runNode(ctx context.Context, args []string, s stdio) error {
	f, fs, err := parseRunFlags(args, s.err)
	if err != nil {
		return err
	}
	opts, err := f.options(fs)
	if err != nil {
		return err
	}
	return serveNode(ctx, f, opts, s)
}

// parseRunFlags defines and parses the flags of `storesync run`.
func parseRunFlags(args []string, stderr io.Writer) (*runFlags, *flag.FlagSet, error) {
	fs := newFlags("run", stderr)
	var f runFlags
	fs.StringVar(&f.dataDir, "data", defaultDataDir, "data folder: store, identity key and control socket")
	fs.Var(&f.listen, "listen", "libp2p listen multiaddr (repeatable; default "+strings.Join(defaultListen, " and ")+")")
	fs.Var(&f.peers, "peer", "peer to connect to and sync with at start, a multiaddr ending in /p2p/<peer ID> (repeatable)")
	fs.StringVar(&f.pubsubTopic, "pubsub-topic", defaultPubsubTopic, "pubsub topic of the --content-topic scopes, and the one put, query and sync mean when they name none")
	fs.Var(topicFlag{&f.topics}, "content-topic", "content topic to keep, one scope each; after a --group, one of the group's (repeatable; default "+defaultContentTopic+")")
	fs.Var(groupFlagValue{&f.topics}, "group", "join the sync group NAME with the --content-topic flags that follow (repeatable)")
	fs.Var(allowFlag{&f.topics}, "allow", "make the last --group private and let this peer ID in (repeatable)")
	fs.DurationVar(&f.interval, "gossip-interval", 30*time.Second, "how often members of a group announce their roots")
	fs.BoolVar(&f.mdns, "mdns", false, "find peers on the local network with mDNS")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://HOST:PORT/metrics")
	fs.DurationVar(&f.retention, "retention", 0, "delete messages older than this (0: keep everything)")
	fs.DurationVar(&f.window, "window", 0, "sync only messages newer than this (0: all)")
	fs.DurationVar(&f.settle, "settle", 0, "leave messages newer than this out of syncs, as still in flight")
	fs.IntVar(&f.maxMessage, "max-message-size", reconcile.DefaultMaxMessageSize, "largest message the node stores or accepts from peers, in bytes of its wire form")
	fs.BoolVar(&f.keyIndex, "key-index", false, "keep every scope's keys in memory by short ID (40 bytes a message): sessions a third to a half as long")
	fs.BoolVar(&f.verify, "verify", false, "at start, check every tree and every stored message against the scopes' records (storesync repair rebuilds a store that fails)")
	fs.DurationVar(&f.maxSkew, "max-clock-skew", reconcile.DefaultMaxClockSkew, "how far ahead of this node's clock a message's timestamp may be, here or from peers")
	f.edge.define(fs)
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	return &f, fs, nil
}

// topicOf returns the pubsub topic of a content topic's scope.
func (f *runFlags) topicOf(contentTopic string) (string, error) {
	if f.autoshard != nil {
		return f.autoshard(contentTopic)
	}
	return f.pubsubTopic, nil
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// options checks the flags and turns them into node options, but for
// identity, store and metrics, which need the data folder or a listener.
func (f *runFlags) options(fs *flag.FlagSet) ([]node.Option, error) {
	switch {
	case f.pubsubTopic == "":
		return nil, usageError(fs, "--pubsub-topic must not be empty")
	case f.retention < 0 || f.window < 0 || f.settle < 0 || f.interval <= 0:
		return nil, usageError(fs, "durations must not be negative")
	case f.window > 0 && f.settle >= f.window:
		return nil, usageError(fs, "--settle (%v) must be shorter than --window (%v)", f.settle, f.window)
	case f.maxMessage < 1 || f.maxMessage > node.MaxMessageSizeLimit:
		return nil, usageError(fs, "--max-message-size %d: want 1 to %d", f.maxMessage, node.MaxMessageSizeLimit)
	case f.maxSkew <= 0 || f.maxSkew > node.MaxClockSkewLimit:
		return nil, usageError(fs, "--max-clock-skew %v: want more than 0 and at most %v", f.maxSkew, node.MaxClockSkewLimit)
	}
	if len(f.topics.plain) == 0 && len(f.topics.groups) == 0 {
		f.topics.plain = []string{defaultContentTopic}
	}
	if f.edge.relay && !flagSet(fs, "pubsub-topic") {
		f.autoshard = f.edge.autoshard
	}
	scopes, groups, err := f.topics.build(f.topicOf)
	if err != nil {
		return nil, usageError(fs, "%v", err)
	}
	opts := []node.Option{node.WithScopes(scopes...), node.WithGroups(groups...),
		node.WithStoreOptions(node.WithMaxMessageSize(f.maxMessage), node.WithMaxClockSkew(f.maxSkew), node.WithVerifyOnOpen(f.verify), node.WithKeyIndex(f.keyIndex)),
		node.WithGossipOptions(gossip.WithInterval(f.interval, 0.3))}
	if f.mdns {
		opts = append(opts, node.WithMDNS(mdnsTag))
	}
	for _, p := range f.peers {
		ai, err := peer.AddrInfoFromString(p)
		if err != nil {
			return nil, usageError(fs, "--peer %s: want a multiaddr ending in /p2p/<peer ID>: %v", p, err)
		}
		opts = append(opts, node.WithPeers(*ai))
	}
	listen := f.listen
	if len(listen) == 0 {
		listen = defaultListen
	}
	opts = append(opts, node.WithListenAddrs(listen...))
	edge, err := f.edge.options(fs)
	if err != nil {
		return nil, err
	}
	opts = append(opts, edge...)
	if f.retention > 0 {
		opts = append(opts, node.WithRetention(f.retention, 0))
	}
	if f.window > 0 || f.settle > 0 {
		opts = append(opts, node.WithProtocolOptions(protocol.WithWindow(f.window, f.settle)))
	}
	return opts, nil
}

// serveNode opens the data folder, starts the node and its endpoints,
// prints where they are, and waits for ctx to end.
func serveNode(ctx context.Context, f *runFlags, opts []node.Option, s stdio) error {
	sock, err := socketPath(f.dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	// Claim the socket before opening the store, so that a second node on
	// the same folder fails with a clear message, not a LevelDB lock error.
	ctl, err := listenControl(sock)
	if errors.Is(err, errNodeRunning) {
		return fmt.Errorf("%w with --data %s (its control socket %s answers); stop it first or use another --data", errNodeRunning, f.dataDir, sock)
	}
	if err != nil {
		return err
	}
	defer removeSocket(sock, s)
	defer ctl.Close()

	key, err := node.LoadOrCreateIdentity(filepath.Join(f.dataDir, "identity.key"))
	if err != nil {
		return err
	}
	opts = append(opts, node.WithIdentity(key), node.WithDataDir(f.dataDir))
	var metrics *metricsServer
	if f.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		if metrics, err = listenMetrics(f.metricsAddr, reg); err != nil {
			return err
		}
		defer metrics.close()
		opts = append(opts, node.WithMetrics(reg))
	}
	n, err := node.New(ctx, opts...)
	if err != nil {
		return err
	}

	stopping, stop := context.WithCancel(context.Background())
	defer stop()
	srv := &http.Server{
		Handler:           (&controlServer{node: n, pubsub: f.pubsubTopic, autoshard: f.autoshard, stopping: stopping}).handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 2)
	go func() { served <- serveErr(srv.Serve(ctl)) }()
	if metrics != nil {
		go func() { served <- metrics.serve() }()
	}

	for _, a := range n.Addrs() {
		fmt.Fprintf(s.out, "listening: %s\n", a)
	}
	fmt.Fprintf(s.out, "peer id: %s\n", n.Host().ID())
	fmt.Fprintf(s.out, "control socket: %s\n", sock)
	if metrics != nil {
		fmt.Fprintf(s.out, "metrics: http://%s/metrics\n", metrics.addr())
	}
	fmt.Fprintln(s.out, "ready")

	var failed error
	select {
	case <-ctx.Done():
	case err := <-served:
		if err != nil {
			failed = fmt.Errorf("serve: %w", err)
		}
	}
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = errors.Join(failed, srv.Shutdown(sctx))
	if metrics != nil {
		err = errors.Join(err, metrics.shutdown(sctx))
	}
	return errors.Join(err, n.Close())
}

// removeSocket removes the control socket file, which closing its
// listener usually has done already.
func removeSocket(path string, s stdio) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(s.err, "storesync run: remove %s: %v\n", path, err)
	}
}

// serveErr filters the error Serve returns after Shutdown.
func serveErr(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
