package gossip_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

func TestMain(m *testing.M) {
	if err := warmUp(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "gossip tests: warm-up:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// warmUp makes, outside any bubble, what the packages under test create
// lazily in package variables. A value that holds channels belongs to the
// bubble that made it (inBubble), and a later bubble that touches it
// stops the test binary ("receive on synctest channel from outside
// bubble"). Today that is the protocol package's shared zstd encoder,
// made by the first fetch or catch-up reply of 1 KiB or more: one fetch
// of a 4 KiB message between two nodes makes it here.
func warmUp(ctx context.Context) error {
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		return err
	}
	defer mn.Close()
	sc := scope("warm-up")
	var ns []*node.Node
	for _, h := range mn.Hosts() {
		n, err := node.New(ctx, node.WithHost(h), node.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
			node.WithScopes(sc))
		if err != nil {
			return err
		}
		defer n.Close()
		ns = append(ns, n)
	}
	m := reconcile.Message{PubsubTopic: sc.PubsubTopic, ContentTopic: sc.ContentTopic, Payload: make([]byte, 4<<10), Timestamp: t0}
	if _, err := ns[0].Put(ctx, m); err != nil {
		return err
	}
	r, err := ns[1].Protocol().Fetch(ctx, ns[0].Host().ID(), sc, []reconcile.Key{m.Key()})
	if err != nil {
		return err
	}
	return r.Err
}
