package node_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storesync/storesync/node"
	"github.com/storesync/storesync/reconcile"
)

// drain reads what a subscription holds now, without waiting.
func drain(sub *node.Subscription) []reconcile.Message {
	var out []reconcile.Message
	for {
		select {
		case m, ok := <-sub.C():
			if !ok {
				return out
			}
			out = append(out, m)
		default:
			return out
		}
	}
}

func TestSubscribeReceivesAddedMessages(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA, scopeB})
	early := msg(scopeA, 1, 1)
	_, err := s.Put(t.Context(), early)
	require.NoError(t, err)

	r := rand.New(rand.NewPCG(13, 14))
	pool := append(randMsgs(r, scopeA, 300, 1e6), randMsgs(r, scopeB, 300, 1e6)...)
	sub := s.Subscribe(t.Context(), 10*len(pool))

	// Concurrent Puts of overlapping parts of the pool, plus the early
	// message again, and one of a scope not kept.
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			lo := w * 80
			batch := append(pool[lo:lo+200:lo+200], early, msg(scopeX, 5, 5))
			_, err := s.Put(t.Context(), batch...)
			assert.NoError(t, err)
		})
	}
	wg.Wait()

	got := drain(sub)
	require.Equal(t, uint64(0), sub.Dropped())
	want := pool[:5*80+200]
	require.ElementsMatch(t, want, got, "every added message once, nothing else")
}

func TestSlowSubscriberDoesNotBlockPut(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA})
	const buffer = 10
	slow := s.Subscribe(t.Context(), buffer)
	r := rand.New(rand.NewPCG(15, 16))
	msgs := randMsgs(r, scopeA, 1000, 1e9)

	done := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < len(msgs) && err == nil; i += 100 {
			_, err = s.Put(t.Context(), msgs[i:i+100]...)
		}
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Put blocked on a subscriber that does not read")
	}
	require.Equal(t, uint64(len(msgs)-buffer), slow.Dropped())
	require.Equal(t, msgs[:buffer], drain(slow), "the first messages wait in the buffer")
}

func TestSubscriptionEnds(t *testing.T) {
	s, _ := newMemStore(t, []reconcile.Scope{scopeA})

	cancelled := s.Subscribe(t.Context(), 4)
	cancelled.Cancel()
	cancelled.Cancel()
	ctx, cancel := context.WithCancel(t.Context())
	byCtx := s.Subscribe(ctx, 4)
	cancel()
	live := s.Subscribe(t.Context(), 4)

	_, ok := <-cancelled.C()
	require.False(t, ok)
	_, ok = <-byCtx.C()
	require.False(t, ok)

	m := msg(scopeA, 7, 7)
	_, err := s.Put(t.Context(), m)
	require.NoError(t, err)
	require.Equal(t, m, <-live.C())

	require.NoError(t, s.Close())
	_, ok = <-live.C()
	require.False(t, ok, "Close ends every subscription")
}
