//go:build !race

package gossip_test

// slowdown stretches timing-based tests under the race detector, which
// runs the code several times slower.
const slowdown = 1
