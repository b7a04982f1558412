package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

const (
	// putChunk is how many lines of standard input one request carries.
	putChunk = 1000
	// maxLine bounds one line of standard input, one message's payload.
	maxLine = 4 << 20
)

// runPut stores messages in a running node: the --payload, or else one
// message per non-empty line of standard input, sent 1,000 lines a
// request. It prints the hash of every message added, one a line, as the
// node answers. With --json it prints instead one JSON object, the
// answers of all requests merged: added and rejected concatenated (each
// rejected index counts from the first message sent, over all requests),
// duplicates summed. A rejected message makes the exit status 1.
func runPut(ctx context.Context, args []string, s stdio) error {
	fs := newFlags("put", s.err)
	dir := fs.String("data", defaultDataDir, "data folder of the running node")
	ps := pubsubTopicFlag(fs, "pubsub topic of the messages (default: the running node's --pubsub-topic)")
	ct := fs.String("content-topic", defaultContentTopic, "content topic of the messages")
	var payload *string
	fs.Func("payload", "the payload of one message (default: one message per line of standard input; empty lines are skipped)", func(v string) error {
		payload = &v
		return nil
	})
	asJSON := fs.Bool("json", false, "print the node's answers as one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := newControlClient(*dir)
	if err != nil {
		return err
	}
	p := &putter{c: c, pubsubTopic: *ps, contentTopic: *ct, s: s, json: *asJSON,
		total: putResponse{Added: []putAdded{}, Rejected: []putRejected{}}}
	if payload != nil {
		err = p.send(ctx, []string{*payload}, []int{0})
	} else {
		err = p.sendLines(ctx)
	}
	if err != nil {
		return err
	}
	return p.finish()
}

// putter sends payloads and gathers the answers.
type putter struct {
	c *controlClient
	// pubsubTopic is "" for the node's own.
	pubsubTopic  string
	contentTopic string
	s            stdio
	json         bool
	total        putResponse
	// lines maps the index of each message sent to its line of standard
	// input (0 for --payload), for error messages.
	lines []int
}

// sendLines sends the lines of standard input in chunks.
func (p *putter) sendLines(ctx context.Context) error {
	sc := bufio.NewScanner(p.s.in)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var chunk []string
	var lines []int
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			continue
		}
		chunk, lines = append(chunk, line), append(lines, n)
		if len(chunk) == putChunk {
			if err := p.send(ctx, chunk, lines); err != nil {
				return err
			}
			chunk, lines = chunk[:0], lines[:0]
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("standard input: %w", err)
	}
	if len(chunk) == 0 && len(p.lines) == 0 {
		return fmt.Errorf("no messages: give --payload or lines on standard input")
	}
	if len(chunk) > 0 {
		return p.send(ctx, chunk, lines)
	}
	return nil
}

// send stores one chunk of payloads, from the given input lines.
func (p *putter) send(ctx context.Context, payloads []string, lines []int) error {
	var r putResponse
	if err := p.c.call(ctx, http.MethodPost, "/put", putRequest{PubsubTopic: p.pubsubTopic, ContentTopic: p.contentTopic, Payloads: payloads}, &r); err != nil {
		return err
	}
	offset := len(p.lines)
	p.lines = append(p.lines, lines...)
	p.total.Added = append(p.total.Added, r.Added...)
	p.total.Duplicates += r.Duplicates
	for _, rj := range r.Rejected {
		rj.Index += offset
		p.total.Rejected = append(p.total.Rejected, rj)
	}
	if p.json {
		return nil
	}
	for _, a := range r.Added {
		if _, err := fmt.Fprintln(p.s.out, a.Hash); err != nil {
			return err
		}
	}
	return nil
}

// finish prints the summary and decides the outcome.
func (p *putter) finish() error {
	if p.json {
		b, err := json.Marshal(p.total)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(p.s.out, "%s\n", b); err != nil {
			return err
		}
	} else {
		if d := p.total.Duplicates; d > 0 {
			fmt.Fprintf(p.s.err, "%d duplicate messages skipped\n", d)
		}
		for _, rj := range p.total.Rejected {
			where := "message"
			if rj.Index < len(p.lines) && p.lines[rj.Index] > 0 {
				where = fmt.Sprintf("line %d", p.lines[rj.Index])
			}
			fmt.Fprintf(p.s.err, "storesync put: %s rejected: %s\n", where, rj.Error)
		}
	}
	if len(p.total.Rejected) > 0 {
		return errReported
	}
	return nil
}
