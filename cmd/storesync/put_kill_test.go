package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// putKillTopics are the scopes TestPutsSurviveKills puts to, in turn.
var putKillTopics = []string{cliTopic, "/demo/1/other/proto"}

// killPutter puts batches of messages to a node through its control socket,
// one request after another, until a request fails, and keeps what the
// node acknowledged and the batch it was putting when the node died.
type killPutter struct {
	mu       sync.Mutex
	acked    []reconcile.Message
	inFlight []reconcile.Message
	first    chan struct{} // closed at the first acknowledged put
}

// run puts until a request fails; ts is the first timestamp to use.
func (p *killPutter) run(ctx context.Context, c *controlClient, r *rand.Rand, ts int64) {
	for i := 0; ; i++ {
		topic := putKillTopics[i%len(putKillTopics)]
		req := putRequest{ContentTopic: topic, Timestamp: ts, Payloads: make([]string, 100+r.IntN(300))}
		batch := make([]reconcile.Message, len(req.Payloads))
		for j := range req.Payloads {
			b := make([]byte, 50+r.IntN(150))
			_, _ = crand.Read(b)
			req.Payloads[j] = hex.EncodeToString(b)
			batch[j] = reconcile.Message{PubsubTopic: defaultPubsubTopic, ContentTopic: topic,
				Payload: []byte(req.Payloads[j]), Timestamp: ts + int64(j)}
		}
		ts += int64(len(batch)) + int64(r.IntN(1e6))
		p.mu.Lock()
		p.inFlight = batch
		p.mu.Unlock()
		var resp putResponse
		if err := c.call(ctx, http.MethodPost, "/put", req, &resp); err != nil {
			return
		}
		p.mu.Lock()
		if len(p.acked) == 0 {
			close(p.first)
		}
		p.acked = append(p.acked, batch...)
		p.inFlight = nil
		p.mu.Unlock()
	}
}

// TestPutsSurviveKills: a node taking puts over two scopes through its
// control socket, batch after batch, while its journal is flushed into
// the trees in the background, is killed with SIGKILL at random moments
// ten times and restarted on the same data folder. After each kill the
// store passes the full verification on open (every tree and scope record
// agrees with the message records), holds every message the node
// acknowledged, and the batch in flight either whole or not at all.
func TestPutsSurviveKills(t *testing.T) {
	bin := storesyncBinary(t)
	dir := filepath.Join(t.TempDir(), "node")
	var args []string
	for _, topic := range putKillTopics {
		args = append(args, "--content-topic", topic)
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	ts := time.Now().Add(-time.Hour).UnixNano()
	var all []reconcile.Message
	for kill := range 10 {
		proc := startNode(t, bin, dir, args...)
		c, err := newControlClient(dir)
		require.NoError(t, err)
		p := &killPutter{first: make(chan struct{})}
		done := make(chan struct{})
		pr := rand.New(rand.NewPCG(r.Uint64(), r.Uint64())) // r is this goroutine's
		go func() {
			defer close(done)
			p.run(t.Context(), c, pr, ts)
		}()
		// At least one put in, then a random moment more: a slow machine
		// (the race detector) may take longer than the window to answer
		// the first.
		select {
		case <-p.first:
		case <-time.After(30 * time.Second):
			t.Fatalf("kill %d: the node took no put in 30 s", kill)
		}
		time.Sleep(time.Duration(r.IntN(400)) * time.Millisecond)
		require.NoError(t, proc.cmd.Process.Kill())
		<-proc.done
		<-done
		ts += int64(time.Minute)

		require.NotEmpty(t, p.acked, "kill %d: the node took no put", kill)
		all = append(all, p.acked...)
		withDataFolder(t, dir, func(_ ds.Batching, s *node.Store) {
			counts := map[reconcile.Scope]int{}
			for _, m := range all {
				counts[m.Scope()]++
			}
			inFlight := 0
			if len(p.inFlight) > 0 {
				sc := p.inFlight[0].Scope()
				keys := make([]reconcile.Key, len(p.inFlight))
				for i := range p.inFlight {
					keys[i] = p.inFlight[i].Key()
				}
				got, err := s.Get(t.Context(), sc, keys)
				require.NoError(t, err)
				for _, m := range got {
					if m != nil {
						inFlight++
					}
				}
				require.True(t, inFlight == 0 || inFlight == len(keys),
					"kill %d: %d of the %d messages in flight stored", kill, inFlight, len(keys))
				if inFlight > 0 {
					all = append(all, p.inFlight...)
					counts[sc] += inFlight
				}
			}
			for sc, n := range counts {
				st, ok := s.Stats(sc)
				require.True(t, ok)
				require.Equal(t, uint64(n), st.Count, "kill %d: scope %s", kill, sc.ContentTopic)
			}
			for sc := range counts {
				var keys []reconcile.Key
				for _, m := range all {
					if m.Scope() == sc {
						keys = append(keys, m.Key())
					}
				}
				got, err := s.Get(t.Context(), sc, keys)
				require.NoError(t, err)
				for i, m := range got {
					require.NotNil(t, m, "kill %d: acknowledged message %d of %s lost", kill, i, sc.ContentTopic)
				}
			}
		}, node.WithVerifyOnOpen(true))
		t.Logf("kill %d: %d messages acknowledged in all, the batch in flight stored: %v", kill, len(all), len(p.inFlight) > 0 && all[len(all)-1].Timestamp == p.inFlight[len(p.inFlight)-1].Timestamp)
	}
}
