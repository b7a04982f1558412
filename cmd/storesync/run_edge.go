package main

import (
	"flag"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/protocol/waku"
)

// defaultListen are the addresses of `storesync run` without --listen:
// TCP for libp2p peers and a websocket, on a port of its own, for
// browsers (js-waku dials websockets only).
var defaultListen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/tcp/0/ws"}

// defaultClusterID is the cluster the demo node says it is in: 1, The
// Waku Network, which js-waku joins by default.
const defaultClusterID = 1

// edgeFlags are the flags of `storesync run` that let Waku clients in
// with their stock settings.
type edgeFlags struct {
	mplex     bool
	clusterID uint
	// shards is the number of shards of the cluster that autosharding
	// spreads content topics over.
	shards int
	relay  bool
	store  bool
}

func (e *edgeFlags) define(fs *flag.FlagSet) {
	fs.BoolVar(&e.mplex, "mplex", true, "offer the mplex muxer after yamux, as js-waku offers only mplex (--mplex=false: yamux alone)")
	fs.UintVar(&e.clusterID, "cluster-id", defaultClusterID, "Waku cluster the node answers metadata requests with, its shards those of the kept /waku/2/rs/<cluster>/<shard> pubsub topics")
	fs.IntVar(&e.shards, "shards", waku.DefaultShards, "number of shards in the cluster, for autosharding content topics")
	fs.BoolVar(&e.relay, "relay", false, "join Waku relay on the kept scopes' pubsub topics and store what is relayed there; without --pubsub-topic, each --content-topic's pubsub topic is its autosharded shard of --cluster-id")
	fs.BoolVar(&e.store, "waku-store", true, "answer Waku Store v3 queries (keeps an index of messages by hash)")
}

// autoshard returns the pubsub topic of a content topic by autosharding
// over the cluster's shards.
func (e *edgeFlags) autoshard(contentTopic string) (string, error) {
	rs, err := waku.AutoShard(contentTopic, uint16(e.clusterID), e.shards)
	if err != nil {
		return "", err
	}
	return rs.PubsubTopic(), nil
}

// options checks the flags and turns them into node options.
func (e *edgeFlags) options(fs *flag.FlagSet) ([]node.Option, error) {
	switch {
	case e.clusterID > 1<<16-1:
		return nil, usageError(fs, "--cluster-id %d: want 0 to 65535", e.clusterID)
	case e.shards < 1 || e.shards > waku.MaxShards:
		return nil, usageError(fs, "--shards %d: want 1 to %d", e.shards, waku.MaxShards)
	}
	opts := []node.Option{node.WithMplex(e.mplex), node.WithWakuMetadata(uint16(e.clusterID))}
	if e.relay {
		opts = append(opts, node.WithRelay())
	}
	if e.store {
		opts = append(opts, node.WithWakuStore())
	}
	return opts, nil
}
