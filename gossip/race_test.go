//go:build race

package gossip_test

// raceEnabled reports whether the race detector is on.
const raceEnabled = true
