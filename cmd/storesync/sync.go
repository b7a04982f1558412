package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// runSync makes a running node sync with a peer now, shows the progress
// on standard error, and prints the report: a line per scope, or with
// --json the report object. A failed sync, or a failed scope, makes the
// exit status 1.
func runSync(ctx context.Context, args []string, s stdio) error {
	fs := newFlags("sync", s.err)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: storesync sync [flags] PEER\n\nPEER is a multiaddr ending in /p2p/<peer ID>, or the ID of a peer the node knows.")
		fs.PrintDefaults()
	}
	dir := fs.String("data", defaultDataDir, "data folder of the running node")
	ps := pubsubTopicFlag(fs, "pubsub topic of the --content-topic flags (default: the running node's --pubsub-topic); without them, sync every kept scope under it")
	var cts stringList
	fs.Var(&cts, "content-topic", "content topic to sync (repeatable; default every kept one, under --pubsub-topic if given)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	group := fs.String("group", "", "sync the joined group NAME with a few of its members instead of one PEER")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *group != "" {
		if len(pos) != 0 || len(cts) != 0 || *ps != "" {
			return usageError(fs, "--group takes no PEER, --content-topic or --pubsub-topic")
		}
		return syncGroup(ctx, *dir, *group, *asJSON, s)
	}
	if len(pos) != 1 {
		return usageError(fs, "want exactly one PEER, got %d arguments", len(pos))
	}
	c, err := newControlClient(*dir)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, http.MethodPost, "/sync", syncRequest{Peer: pos[0], PubsubTopic: *ps, ContentTopics: cts})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rep, err := readSyncStream(resp.Body, newProgressView(s.err, isTerminal(s.err), time.Now))
	if err != nil {
		// Hanging up stops the sync on the node too.
		return interrupted(ctx, err)
	}
	if *asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(s.out, "%s\n", b); err != nil {
			return err
		}
	} else if err := printReport(s.out, rep); err != nil {
		return err
	}
	label := scopeLabeler(rep)
	for _, sc := range rep.Scopes {
		if sc.Error != "" {
			if *asJSON {
				fmt.Fprintf(s.err, "storesync sync: %s: %s\n", label(sc), sc.Error)
			}
			return errReported
		}
	}
	return nil
}

// readSyncStream shows the progress lines of a sync answer and returns
// its report, or the error it ended with.
func readSyncStream(r io.Reader, view *progressView) (*syncReport, error) {
	dec := json.NewDecoder(r)
	defer view.finish()
	for {
		var line syncLine
		if err := dec.Decode(&line); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("the node ended the sync without a report")
			}
			return nil, fmt.Errorf("reading the node's answer: %w", err)
		}
		switch {
		case line.Progress != nil:
			view.update(*line.Progress)
		case line.Report != nil:
			return line.Report, nil
		case line.Error != "":
			return nil, errors.New(line.Error)
		}
	}
}

// printReport prints a line per scope of a sync report.
func printReport(w io.Writer, rep *syncReport) error {
	label := scopeLabeler(rep)
	for _, sc := range rep.Scopes {
		var err error
		if sc.Error != "" {
			_, err = fmt.Fprintf(w, "%s: error: %s\n", label(sc), sc.Error)
		} else {
			streamed := ""
			if sc.Streamed > 0 {
				streamed = fmt.Sprintf("streamed %d, ", sc.Streamed)
			}
			_, err = fmt.Fprintf(w, "%s: received %d, sent %d, need %d, have %d, rejected %d, %s%d round trips, %d bytes, %s\n",
				label(sc), sc.Received, sc.Sent, sc.Need, sc.Have, sc.Rejected, streamed, sc.RoundTrips, sc.Bytes, formatMillis(sc.DurationMS))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// scopeLabeler returns how the lines about a report's scopes name them:
// by content topic, which is enough while every scope shares one pubsub
// topic, or as "CONTENT (PUBSUB)" when the report spans several.
func scopeLabeler(rep *syncReport) func(syncScopeReport) string {
	for _, sc := range rep.Scopes {
		if sc.PubsubTopic != rep.Scopes[0].PubsubTopic {
			return func(sc syncScopeReport) string { return sc.ContentTopic + " (" + sc.PubsubTopic + ")" }
		}
	}
	return func(sc syncScopeReport) string { return sc.ContentTopic }
}

// formatMillis prints a duration given in milliseconds to a precision a
// person reads: microseconds below a second, milliseconds above.
func formatMillis(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	if d < time.Second {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// isTerminal reports whether w is a terminal, where a progress bar can be
// redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// syncGroup asks the node to sync a joined group with a few members now
// and prints whom it synced with.
func syncGroup(ctx context.Context, dir, group string, asJSON bool, s stdio) error {
	c, err := newControlClient(dir)
	if err != nil {
		return err
	}
	var out groupSyncResponse
	if err := c.call(ctx, http.MethodPost, "/sync-group", groupSyncRequest{Group: group}, &out); err != nil {
		return interrupted(ctx, err)
	}
	if asJSON {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(s.out, "%s\n", b)
		return err
	}
	_, err = fmt.Fprintf(s.out, "group %s: synced with %s\n", out.Group, strings.Join(out.Peers, ", "))
	return err
}
