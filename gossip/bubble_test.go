package gossip_test

import (
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// inBubble runs a cluster test in a synctest bubble. Time there is fake:
// it moves only when every goroutine of the test (nodes, mocknet's
// in-memory streams, GossipSub, gossip's timers) is blocked, so
// intervals, backoffs and the test's own deadlines are measured in the
// time the code schedules, however slow or loaded the machine is. A
// test that asserts "within 3 intervals" then fails only when gossip
// takes longer than that, never because the CPU was busy elsewhere.
//
// Under the race detector the bubble runs on one P: with two or more,
// the race runtime of Go 1.26 fails an internal CHECK
// ("tsan_rtl.cpp:346 ... kEpochLast") within seconds when libp2p hosts
// run in a bubble (golang/go#78156). The detector reasons from
// happens-before edges, not from what ran in parallel, so one P still
// finds races, though over fewer interleavings.
func inBubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	if raceEnabled {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	synctest.Test(t, f)
}

// within polls cond every 10 ms until it holds and returns how long that
// took; it fails the test if cond does not hold within d. In a bubble
// the time is the fake time of the code under test.
func within(t testing.TB, d time.Duration, cond func() bool, msgAndArgs ...any) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) >= d {
			require.Fail(t, fmt.Sprintf("condition not met within %v", d), msgAndArgs...)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
