package node_test

import (
	"context"
	"fmt"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

func ExampleStore() {
	ctx := context.Background()
	// A node on disk would use node.OpenLevelDB(dir) instead.
	d := dssync.MutexWrap(ds.NewMapDatastore())
	s, err := node.OpenStore(ctx, d)
	if err != nil {
		panic(err)
	}
	defer s.Close()

	chat := reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/chat/1/room/proto"}
	if err := s.AddScope(ctx, chat); err != nil {
		panic(err)
	}
	sub := s.Subscribe(ctx, 16)

	res, err := s.Put(ctx,
		reconcile.Message{PubsubTopic: chat.PubsubTopic, ContentTopic: chat.ContentTopic, Payload: []byte("hi"), Timestamp: 2},
		reconcile.Message{PubsubTopic: chat.PubsubTopic, ContentTopic: chat.ContentTopic, Payload: []byte("hello"), Timestamp: 1},
		reconcile.Message{PubsubTopic: chat.PubsubTopic, ContentTopic: "/other/1/x/proto", Payload: []byte("?"), Timestamp: 3},
	)
	if err != nil {
		panic(err)
	}
	fmt.Println("added:", len(res.Added), "rejected:", len(res.Rejected))
	fmt.Println("first delivered:", string((<-sub.C()).Payload))

	page, err := s.Query(ctx, node.Query{Scope: chat})
	if err != nil {
		panic(err)
	}
	for _, m := range page.Messages {
		fmt.Println(m.Timestamp, string(m.Payload))
	}
	st, _ := s.Stats(chat)
	fmt.Println("count:", st.Count, "newest:", st.Newest)
	// Output:
	// added: 2 rejected: 1
	// first delivered: hi
	// 1 hello
	// 2 hi
	// count: 2 newest: 2
}
