package main

import (
	"fmt"
	"slices"

	"github.com/storesync/storesync/reconcile"
)

// hexes returns the hashes as sorted lower-case hex, the form both
// implementations can be compared in.
func hexes(keys []reconcile.Key) []string {
	out := make([]string, len(keys))
	for i := range keys {
		out[i] = keys[i].Hash.String()
	}
	slices.Sort(out)
	return out
}

// sameSet compares two sorted lists of IDs and describes how they differ:
// how many were found that should not have been, and how many were not
// found, with one example of each to start an investigation from.
func sameSet(what string, got, want []string) error {
	if slices.Equal(got, want) {
		return nil
	}
	var extra, absent []string
	i, j := 0, 0
	for i < len(got) || j < len(want) {
		switch {
		case j == len(want) || (i < len(got) && got[i] < want[j]):
			extra = append(extra, got[i])
			i++
		case i == len(got) || want[j] < got[i]:
			absent = append(absent, want[j])
			j++
		default:
			i++
			j++
		}
	}
	msg := fmt.Sprintf("%s: %d IDs, want %d: %d unexpected, %d absent", what, len(got), len(want), len(extra), len(absent))
	if len(extra) > 0 {
		msg += ", e.g. unexpected " + extra[0]
	}
	if len(absent) > 0 {
		msg += ", e.g. absent " + absent[0]
	}
	if len(extra) == 0 && len(absent) == 0 {
		msg += " (duplicates)"
	}
	return fmt.Errorf("mismatch: %s", msg)
}
