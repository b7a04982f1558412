package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// childCommand is the hidden first argument with which the tool runs
// itself as a child process: the receiver of a catch-up, or one of its
// baselines. It stays out of -help; the parent builds the command line.
const childCommand = "__child"

// What a child process does, and the kind of its progress lines.
const (
	kindCatchup   = "catchup"   // an empty node syncs with the sender until it holds the same
	kindRawPuts   = "rawputs"   // raw batched LevelDB puts of the same messages
	kindRawStream = "rawstream" // reads the sender's raw stream of the same messages
	kindProgress  = "progress"  // a catch-up child's count so far, with -progress
)

// childArgs is the command line of a child process.
type childArgs struct {
	kind     string
	dir      string        // data folder (catchup, rawputs)
	n        int           // messages to expect or write
	seed     uint64        // generator seed (rawputs)
	sender   string        // the sender's multiaddr ending in /p2p/<id> (catchup, rawstream, loadattack)
	count    uint64        // the sender's count (catchup)
	root     string        // the sender's root, hex (catchup)
	timeout  time.Duration // the child gives up and fails after this
	progress bool          // catchup: print progress lines
}

// args returns the child's command line after childCommand.
func (a childArgs) args() []string {
	return []string{
		"-kind", a.kind, "-dir", a.dir, "-n", strconv.Itoa(a.n),
		"-seed", strconv.FormatUint(a.seed, 10), "-sender", a.sender,
		"-count", strconv.FormatUint(a.count, 10), "-root", a.root,
		"-timeout", a.timeout.String(), "-progress=" + strconv.FormatBool(a.progress),
	}
}

// parseChildArgs parses what args wrote.
func parseChildArgs(args []string) (childArgs, error) {
	var a childArgs
	fs := flag.NewFlagSet(childCommand, flag.ContinueOnError)
	fs.StringVar(&a.kind, "kind", "", "")
	fs.StringVar(&a.dir, "dir", "", "")
	fs.IntVar(&a.n, "n", 0, "")
	fs.Uint64Var(&a.seed, "seed", 1, "")
	fs.StringVar(&a.sender, "sender", "", "")
	fs.Uint64Var(&a.count, "count", 0, "")
	fs.StringVar(&a.root, "root", "", "")
	fs.DurationVar(&a.timeout, "timeout", time.Minute, "")
	fs.BoolVar(&a.progress, "progress", false, "")
	if err := fs.Parse(args); err != nil {
		return a, err
	}
	if a.n < 1 || a.timeout <= 0 {
		return a, errors.New("child: -n and -timeout must be positive")
	}
	return a, nil
}

// childResult is a line a child prints on stdout, as JSON: a progress
// line (Kind kindProgress, Count only), or its one result line, printed
// last, whether it succeeded or not. Seconds cover the measured work
// only, never the process start.
type childResult struct {
	Kind  string `json:"kind"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Seconds: catchup, from the first SyncNow until count and root
	// match; rawputs, the puts and commits; rawstream, first byte to last.
	Seconds float64 `json:"seconds"`
	// ConnectSeconds is the dial to the sender, before Seconds starts.
	ConnectSeconds float64 `json:"connect_seconds,omitempty"`
	// Messages received and stored, written, or read.
	Messages int `json:"messages"`
	Rejected int `json:"rejected,omitempty"`
	// Bytes: catchup, the wire bytes of its protocol.Reports; rawstream,
	// the bytes read, varint prefixes included; loadattack, the bytes the
	// server sent the hostile peers.
	Bytes int64 `json:"bytes,omitempty"`
	// Sessions: catchup, the sessions run; loadattack, the attacks run to
	// their end.
	Sessions int `json:"sessions,omitempty"`
	// StartCount is what the store held at start (after a kill, what the
	// last process left); Count and Root what it holds at the end.
	StartCount uint64 `json:"start_count,omitempty"`
	Count      uint64 `json:"count,omitempty"`
	Root       string `json:"root,omitempty"`
	// PeakRSSKiB is the child's own peak RSS (VmHWM) just before it
	// printed the line; 0 where the system does not say.
	PeakRSSKiB int64 `json:"peak_rss_kib,omitempty"`
	// Addr is a load server's multiaddr, ending in /p2p/<peer ID>.
	Addr string `json:"addr,omitempty"`
}

// lineWriter prints childResults as JSON lines. Safe for concurrent use.
type lineWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{enc: json.NewEncoder(w)} }

func (l *lineWriter) write(r childResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.enc.Encode(r)
}

// childMain runs a child process and returns its exit code: 0 when it did
// its work, 1 when it failed (the error is in its result line and on
// stderr), 2 for a bad command line.
func childMain(args []string) int {
	a, err := parseChildArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	out := newLineWriter(os.Stdout)
	if path := os.Getenv(childProfileEnv); path != "" {
		if stop := startCPUProfile(path + "." + a.kind); stop != nil {
			defer stop()
		}
	}
	var res childResult
	switch a.kind {
	case kindCatchup:
		res, err = runReceiver(ctx, a, out)
	case kindRawPuts:
		res, err = runRawPuts(ctx, a)
	case kindRawStream:
		res, err = runRawStreamReceiver(ctx, a)
	case kindLoadServer:
		res, err = runLoadServer(ctx, a, out)
	case kindLoadAttack:
		res, err = runLoadAttack(ctx, a, out)
	default:
		err = fmt.Errorf("unknown kind %q", a.kind)
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("gave up after -timeout %s: %w", a.timeout, err)
	}
	res.Kind, res.OK = a.kind, err == nil
	res.PeakRSSKiB = vmHWMKiB("self")
	if err != nil {
		res.Error = err.Error()
	}
	out.write(res)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s child: %v\n", a.kind, err)
		return 1
	}
	return 0
}

// runRawPuts writes the n messages of the seed with rawWriter into a
// fresh LevelDB in a.dir, in batches as store ingest does.
func runRawPuts(ctx context.Context, a childArgs) (res childResult, err error) {
	d, done, err := freshLevelDB(a.dir, "raw-")
	if err != nil {
		return res, err
	}
	defer done(&err)
	t, err := timedLoad(ctx, newGenerator(a.seed, livePayloadSize, 1), a.n, ingestBatch, newRawWriter(d).write)
	res.Seconds, res.Messages = t.total.Seconds(), a.n
	return res, err
}
