package main

import (
	"fmt"
	"strconv"
	"strings"
)

// sizeList is the -n flag: one message count, or several separated by
// commas ("1000000,2000000"), each at least 1. Digits may be grouped with
// underscores.
type sizeList []int

// String returns the list as given on the command line.
func (l *sizeList) String() string {
	parts := make([]string, len(*l))
	for i, n := range *l {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// Set replaces the list with the sizes in s.
func (l *sizeList) Set(s string) error {
	var out sizeList
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(p), "_", ""))
		if err != nil || n < 1 {
			return fmt.Errorf("%q: want a positive count of messages", p)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}
