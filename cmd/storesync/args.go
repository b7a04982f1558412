package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/storesync/storesync/reconcile"
)

// stringList is a flag that may be given many times; it collects every
// value in order.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*l = append(*l, v)
	return nil
}

// pubsubTopicFlag defines the --pubsub-topic flag of a client command
// and returns its value, "" unless given. The node reads "" as its own
// --pubsub-topic, so the client needs no knowledge of the node's flags.
func pubsubTopicFlag(fs *flag.FlagSet, usage string) *string {
	var p string
	fs.Func("pubsub-topic", usage, func(v string) error {
		if v == "" {
			return errors.New("empty pubsub topic")
		}
		p = v
		return nil
	})
	return &p
}

// parseInterleaved parses flags that may come before, between or after
// positional arguments (the flag package stops at the first positional
// one), and returns the positional arguments in order. Everything after
// "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseTime reads a time given as RFC 3339 (fractional seconds optional)
// or as Unix nanoseconds, and returns Unix nanoseconds.
func parseTime(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty time")
	}
	if strings.Trim(s, "0123456789") == "" {
		ns, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("time %q: %w", s, err)
		}
		return ns, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("time %q: want RFC 3339 (2006-01-02T15:04:05Z) or Unix nanoseconds", s)
	}
	if t.Before(time.Unix(0, 0)) {
		return 0, fmt.Errorf("time %q is before 1970", s)
	}
	return t.UnixNano(), nil
}

// formatTime prints Unix nanoseconds as RFC 3339 in UTC, or "-" for 0,
// the timestamp of nothing.
func formatTime(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// formatCursor encodes a query cursor: the hex of the key's 40 bytes, or
// "" for the start.
func formatCursor(k reconcile.Key) string {
	if k == (reconcile.Key{}) {
		return ""
	}
	return hex.EncodeToString(k.Bytes())
}

// parseCursor decodes formatCursor's output; "" is the start.
func parseCursor(s string) (reconcile.Key, error) {
	if s == "" {
		return reconcile.Key{}, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return reconcile.Key{}, fmt.Errorf("cursor: not hex: %w", err)
	}
	k, err := reconcile.KeyFromBytes(b)
	if err != nil {
		return reconcile.Key{}, fmt.Errorf("cursor: %d bytes, want %d", len(b), reconcile.KeySize)
	}
	return k, nil
}
