package waku_test

import (
	"fmt"

	"github.com/storesync/storesync/protocol/waku"
)

// The relay shard of a content topic in The Waku Network (cluster 1, 8
// shards), as js-waku computes it.
func ExampleAutoShard() {
	r, err := waku.AutoShard("/jswaku/1/feasibility/proto", 1, waku.DefaultShards)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.PubsubTopic())
	// Output: /waku/2/rs/1/4
}

// The shards of a cluster that a node's pubsub topics are on.
func ExampleClusterShards() {
	fmt.Println(waku.ClusterShards(1, "/waku/2/rs/1/4", "/waku/2/rs/1/2", "/waku/2/rs/2/7", "/waku/2/default-waku/proto"))
	// Output: [2 4]
}
