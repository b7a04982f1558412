//go:build !race

package protocol_test

// raceScale divides the sizes of the largest tests under the race
// detector, which slows them about tenfold; the plain run keeps the
// full sizes.
const raceScale = 1
