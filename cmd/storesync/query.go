package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// allPageSize is the page size of query --all when --limit is not given:
// larger pages, fewer requests.
const allPageSize = 1000

// runQuery prints messages of a running node, oldest first. Without --all
// it prints one page and, if more follow, tells on standard error how to
// get the next one.
func runQuery(ctx context.Context, args []string, s stdio) error {
	fs := newFlags("query", s.err)
	dir := fs.String("data", defaultDataDir, "data folder of the running node")
	ps := pubsubTopicFlag(fs, "pubsub topic of the scope to list (default: the running node's --pubsub-topic)")
	ct := fs.String("content-topic", defaultContentTopic, "content topic to list")
	from := fs.String("from", "", "only messages at or after this time (RFC 3339 or Unix nanoseconds)")
	to := fs.String("to", "", "only messages before this time (RFC 3339 or Unix nanoseconds)")
	after := fs.String("after", "", "start after this cursor, as printed by a previous page")
	limit := fs.Int("limit", 0, fmt.Sprintf("messages per page (default 100, or %d with --all)", allPageSize))
	all := fs.Bool("all", false, "page through every message")
	asJSON := fs.Bool("json", false, "print one JSON object per message per line")
	if err := parse(fs, args); err != nil {
		return err
	}
	v := url.Values{"content_topic": {*ct}}
	if *ps != "" {
		v.Set("pubsub_topic", *ps)
	}
	for name, t := range map[string]string{"from": *from, "to": *to} {
		if t == "" {
			continue
		}
		ns, err := parseTime(t)
		if err != nil {
			return usageError(fs, "--%s: %v", name, err)
		}
		v.Set(name, strconv.FormatInt(ns, 10))
	}
	if _, err := parseCursor(*after); err != nil {
		return usageError(fs, "--after: %v", err)
	}
	if *limit < 0 {
		return usageError(fs, "--limit must not be negative")
	}
	if *limit == 0 && *all {
		*limit = allPageSize
	}
	if *limit > 0 {
		v.Set("limit", strconv.Itoa(*limit))
	}
	c, err := newControlClient(*dir)
	if err != nil {
		return err
	}
	cursor := *after
	for {
		v.Set("after", cursor)
		var page queryResponse
		if err := c.call(ctx, http.MethodGet, "/query?"+v.Encode(), nil, &page); err != nil {
			return err
		}
		for _, m := range page.Messages {
			if err := printMessage(s.out, m, *asJSON); err != nil {
				return err
			}
		}
		if !page.More {
			return nil
		}
		if !*all {
			fmt.Fprintf(s.err, "more: --after %s\n", page.Next)
			return nil
		}
		cursor = page.Next
	}
}

// printMessage prints one message: as JSON, or as
// "<time>  <hash prefix>  <payload>".
func printMessage(w io.Writer, m queryMessage, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	payload, err := hex.DecodeString(m.PayloadHex)
	if err != nil {
		return fmt.Errorf("bad answer from the node: payload_hex: %w", err)
	}
	h := m.Hash
	if len(h) > 16 {
		h = h[:16]
	}
	_, err = fmt.Fprintf(w, "%s  %s  %s\n", formatTime(m.Timestamp), h, readablePayload(payload))
	return err
}

// readablePayload shows a payload on one line: as is if it is printable
// UTF-8, quoted if it is UTF-8 with control characters (a newline would
// break the one-line-per-message output), and as 0x-prefixed hex if it is
// not UTF-8.
func readablePayload(p []byte) string {
	if !utf8.Valid(p) {
		return "0x" + hex.EncodeToString(p)
	}
	s := string(p)
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
