//go:build race

package reconcile

// raceScale divides the sizes of the largest tests under the race
// detector, which slows them about tenfold.
const raceScale = 4
