package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }
func ev(ct string, done, total int) syncProgress {
	return syncProgress{ContentTopic: ct, Done: done, Total: total, Bytes: int64(done) * 100}
}

func TestFormatBar(t *testing.T) {
	require.Equal(t, "["+strings.Repeat("-", barWidth)+"]", formatBar(0, 10))
	require.Equal(t, "["+strings.Repeat("#", barWidth/2)+strings.Repeat("-", barWidth/2)+"]", formatBar(5, 10))
	require.Equal(t, "["+strings.Repeat("#", barWidth)+"]", formatBar(10, 10))
	require.Equal(t, "["+strings.Repeat("#", barWidth)+"]", formatBar(0, 0), "nothing to do is done")
	require.Equal(t, "["+strings.Repeat("#", barWidth)+"]", formatBar(12, 10), "never overflows")
}

func TestHumanBytes(t *testing.T) {
	require.Equal(t, "0 B", humanBytes(0))
	require.Equal(t, "1023 B", humanBytes(1023))
	require.Equal(t, "1.0 KiB", humanBytes(1024))
	require.Equal(t, "1.5 KiB", humanBytes(1536))
	require.Equal(t, "3.0 MiB", humanBytes(3<<20))
	require.Equal(t, "2.0 GiB", humanBytes(2<<30))
}

func TestFormatProgress(t *testing.T) {
	require.Equal(t, "0/5000 messages  0 B  - msg/s  ETA -", formatProgress(0, 5000, 0, 0, 0))
	require.Equal(t, "1200/5000 messages  1.5 MiB  400 msg/s  ETA 10s",
		formatProgress(1200, 5000, 3<<19, 1000, 2500*time.Millisecond))
	require.Equal(t, "5000/5000 messages  1.0 KiB  1000 msg/s  ETA 0s",
		formatProgress(5000, 5000, 1024, 5000, 5*time.Second))
}

func TestProgressViewDrawsBarInPlace(t *testing.T) {
	clk := newFakeClock()
	var out bytes.Buffer
	v := newProgressView(&out, true, clk.now)

	v.update(ev("/a", 1000, 4000))
	require.Equal(t, "\r["+strings.Repeat("#", 6)+strings.Repeat("-", 18)+"] 1000/4000 messages  97.7 KiB  - msg/s  ETA -", out.String())

	out.Reset()
	clk.advance(50 * time.Millisecond)
	v.update(ev("/a", 1500, 4000))
	require.Empty(t, out.String(), "redrawn at most every 100 ms")

	clk.advance(950 * time.Millisecond)
	v.update(ev("/a", 2000, 4000))
	require.Equal(t, "\r["+strings.Repeat("#", 12)+strings.Repeat("-", 12)+"] 2000/4000 messages  195.3 KiB  1000 msg/s  ETA 2s", out.String())

	// A second scope adds to the sum; a shorter line blanks the rest of
	// the longer one.
	out.Reset()
	clk.advance(time.Second)
	v.update(ev("/b", 0, 0))
	require.True(t, strings.HasPrefix(out.String(), "\r["), out.String())

	out.Reset()
	clk.advance(time.Second)
	v.update(ev("/a", 4000, 4000))
	v.finish()
	require.Equal(t, "\r["+strings.Repeat("#", 24)+"] 4000/4000 messages  390.6 KiB  1000 msg/s  ETA 0s"+
		"\r["+strings.Repeat("#", 24)+"] 4000/4000 messages  390.6 KiB  1000 msg/s  ETA 0s\n", out.String())
}

func TestProgressViewPadsShorterLines(t *testing.T) {
	clk := newFakeClock()
	var out bytes.Buffer
	v := newProgressView(&out, true, clk.now)
	v.update(ev("/a", 100000, 100000))
	long := out.Len() - 1 // without the \r
	out.Reset()
	clk.advance(time.Second)
	clear(v.scopes)
	v.update(ev("/a", 1, 2))
	line := strings.TrimPrefix(out.String(), "\r")
	require.Len(t, line, long, "padded to the width of the previous line")
	require.True(t, strings.HasSuffix(line, " "))
}

func TestProgressViewLogsOncePerSecondWithoutTerminal(t *testing.T) {
	clk := newFakeClock()
	var out bytes.Buffer
	v := newProgressView(&out, false, clk.now)
	for range 25 {
		v.update(ev("/a", 100, 1000))
		clk.advance(100 * time.Millisecond)
	}
	v.finish()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 3, "at 0 s, 1 s and 2 s")
	for _, l := range lines {
		require.True(t, strings.HasPrefix(l, "progress: 100/1000 messages"), l)
		require.NotContains(t, l, "\r")
	}
}

func TestProgressViewTellsPubsubTopicsApart(t *testing.T) {
	clk := newFakeClock()
	var out bytes.Buffer
	v := newProgressView(&out, false, clk.now)
	a := ev("/a", 100, 1000)
	a.PubsubTopic = "/waku/2/rs/1/0"
	b := ev("/a", 200, 1000)
	b.PubsubTopic = "/waku/2/rs/1/1"
	v.update(a)
	clk.advance(time.Second)
	v.update(b)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 2)
	require.True(t, strings.HasPrefix(lines[1], "progress: 300/2000 messages"),
		"one content topic under two pubsub topics is two scopes: %s", lines[1])
}
