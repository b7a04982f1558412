package main

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/storesync/storesync/reconcile"
)

// runHash prints the Waku deterministic message hash (RFC 14) of the
// message given by flags, as 64 hex digits alone on one line: a debugging
// aid for checking interoperability with Waku nodes.
func runHash(_ context.Context, args []string, s stdio) error {
	fs := newFlags("hash", s.err)
	pubsub := fs.String("pubsub-topic", "", "pubsub topic")
	content := fs.String("content-topic", "", "content topic")
	payloadHex := fs.String("payload-hex", "", "payload as hex")
	metaHex := fs.String("meta-hex", "", "meta as hex (empty: absent)")
	ts := fs.Int64("timestamp", 0, "timestamp in Unix nanoseconds")
	if err := parse(fs, args); err != nil {
		return err
	}
	payload, err := hex.DecodeString(*payloadHex)
	if err != nil {
		return fmt.Errorf("--payload-hex: %w", err)
	}
	meta, err := hex.DecodeString(*metaHex)
	if err != nil {
		return fmt.Errorf("--meta-hex: %w", err)
	}
	h := reconcile.MessageHash(*pubsub, *content, payload, meta, *ts)
	_, err = fmt.Fprintln(s.out, h)
	return err
}
