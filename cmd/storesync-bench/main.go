// Command storesync-bench measures reconciliation against negentropy on
// the same sets in the same run, and tree ingest against raw LevelDB
// puts. It is a module of its own so that the storesync module does not
// depend on the baseline.
//
// Usage:
//
//	storesync-bench                                  # the whole table and ingest, N = 1,000,000
//	storesync-bench -n N -d D -mode scattered|recent # one case
//	storesync-bench -n N -ingest                     # ingest only
//
// See README.md for the output fields.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
)

// options are the parsed command-line flags.
type options struct {
	n       int
	d       int
	dSet    bool
	mode    string
	seed    uint64
	dir     string
	ingest  bool
	fullRun bool // neither -d nor -mode nor -ingest: the table, then ingest
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 1_000_000, "messages in the full store")
	flag.IntVar(&o.d, "d", 0, "messages the catching-up store misses (default: 0, 10, 1000 and 10000)")
	flag.StringVar(&o.mode, "mode", "", "scattered or recent (default: both)")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed; the same seed gives the same messages and cases")
	flag.StringVar(&o.dir, "dir", "", "folder in which to create the LevelDB stores (default: the system's temporary folder)")
	flag.BoolVar(&o.ingest, "ingest", false, "run only the ingest measurement")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "d" {
			o.dSet = true
		}
	})
	o.fullRun = !o.dSet && o.mode == "" && !o.ingest

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "storesync-bench:", err)
		os.Exit(1)
	}
}

// run checks the flags, prepares the messages and runs what was asked
// for. Its deferred clean-up runs before main exits, so the stores are
// removed on failure too.
func run(ctx context.Context, o options) error {
	cases, err := selectCases(o)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(o.dir, "storesync-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	msgs := generate(o.n, o.seed)
	if o.ingest {
		return runIngest(ctx, work, msgs)
	}
	if err := runCases(ctx, work, msgs, cases, o.seed); err != nil {
		return err
	}
	if o.fullRun {
		return runIngest(ctx, work, msgs)
	}
	return nil
}

// selectCases turns the flags into the list of cases: -d and -mode each
// narrow the table, so both together give one case.
func selectCases(o options) ([]benchCase, error) {
	if o.n < 1 {
		return nil, errors.New("-n must be at least 1")
	}
	if o.ingest {
		if o.dSet || o.mode != "" {
			return nil, errors.New("-ingest takes no -d or -mode")
		}
		return nil, nil
	}
	modes := []string{modeScattered, modeRecent}
	switch o.mode {
	case "":
	case modeScattered, modeRecent:
		modes = []string{o.mode}
	default:
		return nil, fmt.Errorf("-mode %q: want %s or %s", o.mode, modeScattered, modeRecent)
	}
	sizes := []int{0, 10, 1000, 10000}
	if o.dSet {
		if o.d < 0 || o.d > o.n {
			return nil, fmt.Errorf("-d %d: want 0 to %d", o.d, o.n)
		}
		sizes = []int{o.d}
	}
	var out []benchCase
	for _, m := range modes {
		for _, d := range sizes {
			if d > o.n {
				// Only the default table can get here, with a small -n.
				fmt.Fprintf(os.Stderr, "skipping d=%d: more than n=%d\n", d, o.n)
				continue
			}
			out = append(out, benchCase{mode: m, d: d})
		}
	}
	return out, nil
}
