// Command storesync is the demo store node and its tools.
//
// Usage:
//
//	storesync run    --data DIR [--listen MA ...] [--peer MA ...] [--pubsub-topic P] [--content-topic C ...]
//	storesync put    --data DIR [--pubsub-topic P] --content-topic C [--payload TEXT]
//	storesync query  --data DIR [--pubsub-topic P] --content-topic C [--from T] [--to T] [--all]
//	storesync status --data DIR
//	storesync sync   --data DIR [--pubsub-topic P] [--content-topic C ...] PEER
//	storesync export --data DIR [--pubsub-topic P] --content-topic C --out FILE
//	storesync import --data DIR FILE
//	storesync repair --data DIR
//	storesync hash   --pubsub-topic T --content-topic C --payload-hex HEX --meta-hex HEX --timestamp NS
//
// run starts a node that keeps its store, identity and control socket in
// DIR; put, query, status and sync talk to that node through the socket
// (see controlServer for the API). A scope is a pubsub topic and a
// content topic; put, query and sync take the pubsub topic to be the
// node's own (its run --pubsub-topic) unless --pubsub-topic names another
// under which the node keeps scopes.
//
// export writes a scope to a snapshot file, which anyone may publish, and
// import stores the messages of one: through the node running on DIR if
// there is one, else straight from or into the store in DIR (import
// creates it if need be; export without a node takes the pubsub topic to
// be /waku/2/default-waku/proto). An import reads the whole file and
// checks every message before it stores anything, and an import that was
// cut short goes on where it stopped when run again.
//
// repair rebuilds the trees and scope records of a stopped node's store
// from its messages, for a store the node refuses to open as corrupt
// (run --verify checks every tree and message at start).
//
// Run `storesync help` for every command and `storesync <command> -h` for
// its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// stdio is where a command reads its input and writes its output.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, s stdio) error
}

func commands() []command {
	return []command{
		{"run", "start a store node", runNode},
		{"put", "store messages in a running node", runPut},
		{"query", "list a running node's messages", runQuery},
		{"status", "show a running node's scopes", runStatus},
		{"sync", "sync a running node with a peer now", runSync},
		{"export", "write a scope to a snapshot file", runExport},
		{"import", "store the messages of a snapshot file", runImport},
		{"repair", "rebuild a stopped node's trees from its messages", runRepair},
		{"hash", "print the Waku deterministic hash of a message", runHash},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the default handling comes back, so a second
	// Ctrl-C ends a shutdown that hangs.
	context.AfterFunc(ctx, stop)
	code := dispatch(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}

// dispatch runs the subcommand named by args[0] and returns the exit code.
func dispatch(ctx context.Context, args []string, s stdio) int {
	if len(args) == 0 {
		usage(s.err)
		return 2
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		// Asked for, the help is the output.
		usage(s.out)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], s)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			case errors.Is(err, errReported):
				return 1
			}
			fmt.Fprintf(s.err, "storesync %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(s.err, "storesync: unknown command %q\n", args[0])
	usage(s.err)
	return 2
}

var (
	// errUsage reports bad flags; the flag package or the command has
	// printed the details.
	errUsage = errors.New("usage")
	// errReported is a failure the command has already explained in its
	// output (a rejected message, a scope that failed to sync): only the
	// exit code is left to set.
	errReported = errors.New("failure reported")
)

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: storesync <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'storesync <command> -h' for a command's flags.")
}

// newFlags returns a flag set that reports errors to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("storesync "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags and maps a parse failure to errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	return nil
}

// usageError prints a usage problem the flag package cannot see, the way
// it prints its own, and returns errUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), format+"\n", args...)
	fs.Usage()
	return errUsage
}
