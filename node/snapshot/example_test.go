package snapshot_test

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/storesync/storesync/node/snapshot"
	"github.com/storesync/storesync/reconcile"
)

func Example() {
	room := reconcile.Scope{PubsubTopic: "/waku/2/rs/1/0", ContentTopic: "/chat/1/room/proto"}
	f, err := os.CreateTemp("", "room-*.snap")
	if err != nil {
		panic(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	// Export: messages in key order, as a store iterates them.
	w, err := snapshot.NewWriter(f, room)
	if err != nil {
		panic(err)
	}
	for i, text := range []string{"hello", "hi", "bye"} {
		m := reconcile.Message{PubsubTopic: room.PubsubTopic, ContentTopic: room.ContentTopic,
			Payload: []byte(text), Timestamp: int64(1_700_000_000_000_000_000 + i)}
		if err := w.Add(m); err != nil {
			panic(err)
		}
	}
	exported, err := w.Close()
	if err != nil {
		panic(err)
	}

	// Import: each batch verified; persist State with what it stored.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		panic(err)
	}
	r, err := snapshot.NewReader(f)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	fmt.Println("scope:", r.Header().Scope, "messages:", r.Header().Count)
	for {
		b, err := r.Next()
		if errors.Is(err, io.EOF) {
			break // the file is complete and matches its header
		}
		if err != nil {
			panic(err)
		}
		for _, m := range b.Messages {
			fmt.Printf("%d %s\n", m.Timestamp, m.Payload)
		}
		_ = r.State() // store it atomically with the batch's messages
	}
	fmt.Println("root matches:", r.Header().Root() == exported.Root())
	// Output:
	// scope: /waku/2/rs/1/0|/chat/1/room/proto messages: 3
	// 1700000000000000000 hello
	// 1700000000000000001 hi
	// 1700000000000000002 bye
	// root matches: true
}
