package node_test

import (
	"context"
	"fmt"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// ExampleNew mounts storesync on hosts an application already runs, with
// datastores of its own, and syncs one content topic between them.
func ExampleNew() {
	ctx := context.Background()
	scope := reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/myapp/1/chat/proto"}

	mount := func() *node.Node {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			panic(err)
		}
		n, err := node.New(ctx, node.WithHost(h),
			node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())), node.WithScopes(scope))
		if err != nil {
			panic(err)
		}
		return n
	}
	alice, bob := mount(), mount()
	defer alice.Close()
	defer bob.Close()

	for i := range 3 {
		m := reconcile.Message{PubsubTopic: scope.PubsubTopic, ContentTopic: scope.ContentTopic,
			Payload: fmt.Appendf(nil, "hello %d", i), Timestamp: 1_780_000_000_000_000_000 + int64(i)}
		if _, err := alice.Put(ctx, m); err != nil {
			panic(err)
		}
	}
	if err := bob.Connect(ctx, peer.AddrInfo{ID: alice.Host().ID(), Addrs: alice.Host().Addrs()}); err != nil {
		panic(err)
	}
	report, err := bob.SyncNow(ctx, alice.Host().ID(), scope)
	if err != nil {
		panic(err)
	}
	page, err := bob.Query(ctx, node.Query{Scope: scope})
	if err != nil {
		panic(err)
	}
	fmt.Println("received", report.Received())
	for _, m := range page.Messages {
		fmt.Println(string(m.Payload))
	}
	// Output:
	// received 3
	// hello 0
	// hello 1
	// hello 2
}
