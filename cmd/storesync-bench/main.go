// Command storesync-bench measures storesync against baselines measured
// in the same run: reconciliation against negentropy on the same sets,
// tree ingest and store ingest against raw LevelDB puts, a catch-up
// between two processes over libp2p against raw puts and a raw stream
// copy of the same messages, and a snapshot export and import against raw
// puts. It is a module of its own so that the storesync module does not
// depend on the baselines.
//
// Usage:
//
//	storesync-bench                                  # the whole table and tree ingest, N = 1,000,000
//	storesync-bench -n N -d D -mode scattered|recent|twoway # one case
//	storesync-bench -n N -mode disjoint              # each store holds half, at random
//	storesync-bench -n N -ingest                     # tree ingest only
//	storesync-bench -n N[,N...] -mode ingest         # store ingest: Store.Put against raw puts
//	storesync-bench -n N[,N...] -mode catchup        # catch-up of a receiver process
//	storesync-bench -n N[,N...] -mode snapshot       # export and import against raw puts
//	storesync-bench -n N -mode load                  # one server: honest clients, then with hostile peers
//	storesync-bench -n N,N[,N...] -mode growth       # session time at each size against the first, alternating
//
// See README.md for the flags and the output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// The modes beyond the reconciliation table.
const (
	modeIngest   = "ingest"   // store ingest: Store.Put against raw puts
	modeCatchup  = "catchup"  // catch-up of a receiver process over libp2p
	modeSnapshot = "snapshot" // snapshot export and import against raw puts
)

// options are the parsed command-line flags.
type options struct {
	ns      sizeList // -n: every size to run
	n       int      // the size being run
	d       int
	dSet    bool
	mode    string
	seed    uint64
	reps    int
	rounds  int
	keyIdx  bool
	dir     string
	ingest  bool
	runs    int
	single  int
	calls   int
	timeout time.Duration
	kill    int
	cpuProf string
	// -mode load
	clients, insync, insyncN, hostile int
	fullRun                           bool // neither -d nor -mode nor -ingest: the table, then tree ingest
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == childCommand {
		os.Exit(childMain(os.Args[2:]))
	}
	o := options{ns: sizeList{1_000_000}}
	flag.Var(&o.ns, "n", "messages in the full store; -mode ingest, catchup and snapshot take a list such as 1000000,2000000")
	flag.IntVar(&o.d, "d", 0, "messages the catching-up store misses (default: 0, 10, 1000 and 10000)")
	flag.StringVar(&o.mode, "mode", "", "scattered, recent or twoway (default: all three), disjoint, growth, ingest, catchup, snapshot or load")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed; the same seed gives the same messages and cases")
	flag.StringVar(&o.dir, "dir", "", "folder in which to create the LevelDB stores (default: the system's temporary folder)")
	flag.BoolVar(&o.ingest, "ingest", false, "run only the tree ingest measurement")
	flag.IntVar(&o.reps, "reps", 1, "-mode scattered, recent, twoway and disjoint: sessions of each case, each missing other keys, and their median")
	flag.BoolVar(&o.keyIdx, "keyindex", false, "reconciliation modes and -mode growth: trees keep their keys in memory by short ID (reconcile.WithKeyIndex)")
	flag.IntVar(&o.rounds, "rounds", 3, "-mode growth: rounds, each running every case at every size")
	flag.IntVar(&o.runs, "runs", 3, "-mode ingest, catchup, snapshot and load: runs of each kind, alternating")
	flag.IntVar(&o.single, "single", 50_000, "-mode ingest: one-message Put calls after the bulk load")
	flag.IntVar(&o.calls, "calls", 200, "-mode ingest: Put calls of 1,000 messages, in one scope and over 1,000 scopes")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "-mode catchup: the longest one child process may run")
	flag.StringVar(&o.cpuProf, "cpuprofile", "", "write a CPU profile to the file, and one per child process to the file followed by .<kind>")
	flag.IntVar(&o.kill, "kill", 0, "-mode catchup: also run a catch-up whose receiver is killed this many times")
	flag.IntVar(&o.clients, "clients", 20, "-mode load: clients catching up the scope of -n messages")
	flag.IntVar(&o.insync, "insync", 20, "-mode load: clients in sync, running sessions in a loop")
	flag.IntVar(&o.insyncN, "insync-n", 10_000, "-mode load: messages of the in-sync clients' scope")
	flag.IntVar(&o.hostile, "hostile", 50, "-mode load: hostile peers in the second phase")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "d" {
			o.dSet = true
		}
	})
	o.n = o.ns[0]
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
	if err := checkFlags(o); err != nil {
		return err
	}
	cases, err := selectCases(o)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(o.dir, "storesync-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if o.cpuProf != "" {
		stop := startCPUProfile(o.cpuProf)
		if stop == nil {
			return errors.New("cannot write -cpuprofile")
		}
		defer stop()
		if err := os.Setenv(childProfileEnv, o.cpuProf); err != nil {
			return err
		}
	}

	switch o.mode {
	case modeIngest:
		for _, n := range o.ns {
			o.n = n
			if err := runStoreIngest(ctx, work, o); err != nil {
				return err
			}
		}
		return nil
	case modeCatchup:
		return runCatchup(ctx, work, o)
	case modeLoad:
		return runLoad(ctx, work, o)
	case modeSnapshot:
		for _, n := range o.ns {
			o.n = n
			if err := runSnapshot(ctx, work, o); err != nil {
				return err
			}
		}
		return nil
	}
	if o.mode == modeGrowth {
		return runGrowth(ctx, work, o, cases)
	}
	msgs := generate(o.n, o.seed)
	if o.ingest {
		return runIngest(ctx, work, msgs)
	}
	if err := runCases(ctx, work, msgs, cases, o.seed, o.reps, o.treeOptions()...); err != nil {
		return err
	}
	if o.fullRun {
		return runIngest(ctx, work, msgs)
	}
	return nil
}

// treeOptions returns the options the reconciliation stores' trees are
// opened with.
func (o options) treeOptions() []reconcile.Option {
	if o.keyIdx {
		return []reconcile.Option{reconcile.WithKeyIndex()}
	}
	return nil
}

// checkFlags rejects flags that the chosen mode does not take.
func checkFlags(o options) error {
	live := o.mode == modeIngest || o.mode == modeCatchup || o.mode == modeSnapshot || o.mode == modeLoad
	switch {
	case live && (o.dSet || o.ingest):
		return fmt.Errorf("-mode %s takes no -d or -ingest", o.mode)
	case o.mode == modeGrowth && len(o.ns) < 2:
		return errors.New("-mode growth needs a list of sizes, such as -n 1000000,10000000")
	case !live && o.mode != modeGrowth && len(o.ns) > 1:
		return errors.New("a list of sizes needs -mode ingest, catchup, snapshot or growth")
	case o.runs < 1 || o.single < 1 || o.calls < 1 || o.reps < 1 || o.rounds < 1:
		return errors.New("-runs, -reps, -rounds, -single and -calls must be at least 1")
	case o.kill < 0 || (o.kill > 0 && o.mode != modeCatchup):
		return errors.New("-kill takes a count of at least 0, with -mode catchup")
	case o.timeout <= 0:
		return errors.New("-timeout must be positive")
	}
	return nil
}

// selectCases turns the flags into the list of cases: -d and -mode each
// narrow the table, so both together give one case.
func selectCases(o options) ([]benchCase, error) {
	if o.ingest {
		if o.dSet || o.mode != "" {
			return nil, errors.New("-ingest takes no -d or -mode")
		}
		return nil, nil
	}
	modes := []string{modeScattered, modeRecent, modeTwoWay}
	switch o.mode {
	case "":
	case modeScattered, modeRecent, modeTwoWay:
		modes = []string{o.mode}
	case modeDisjoint:
		// Every message is in the difference: d is n.
		return []benchCase{{mode: modeDisjoint, d: o.n}}, nil
	case modeGrowth:
	case modeIngest, modeCatchup, modeSnapshot, modeLoad:
		return nil, nil
	default:
		return nil, fmt.Errorf("-mode %q: want %s, %s, %s, %s, %s, %s, %s, %s or %s", o.mode, modeScattered, modeRecent,
			modeTwoWay, modeDisjoint, modeGrowth, modeIngest, modeCatchup, modeSnapshot, modeLoad)
	}
	sizes := []int{0, 10, 1000, 10000}
	if o.mode == modeGrowth {
		// Scattered and two-way, the cases of the growth target.
		modes = []string{modeScattered, modeTwoWay}
	}
	if o.dSet {
		if o.d < 0 || o.d > o.n {
			return nil, fmt.Errorf("-d %d: want 0 to %d", o.d, o.n)
		}
		sizes = []int{o.d}
	}
	var out []benchCase
	for _, m := range modes {
		for _, d := range sizes {
			if d == 0 && m == modeTwoWay && o.mode == modeGrowth {
				continue // in sync: the scattered case at d = 0 is the same
			}
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
