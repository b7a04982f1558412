package main

import "slices"

// summary is a figure measured over runs: the median, least and greatest
// value and how many runs there were.
type summary struct {
	med, min, max float64
	runs          int
}

// summarize returns the summary of xs, which is not empty.
func summarize(xs []float64) summary {
	s := slices.Clone(xs)
	slices.Sort(s)
	return summary{med: median(s), min: s[0], max: s[len(s)-1], runs: len(s)}
}

// ratios returns a[i]/b[i] for every run: ratios of runs that ran side by
// side, so that a slow spell of the machine cancels out of each.
func ratios(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] / b[i]
	}
	return out
}

// median returns the middle value of xs, which is not empty.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
