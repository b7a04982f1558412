package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/storesync/storesync/protocol"
	"github.com/storesync/storesync/reconcile"
)

// runExport writes a scope to a snapshot file: through the node running
// on --data if there is one, else straight from the store in --data. It
// shows the progress on standard error and prints a summary line, or
// with --json the report.
func runExport(ctx context.Context, args []string, s stdio) error {
	fs := newFlags("export", s.err)
	dir := fs.String("data", defaultDataDir, "data folder of the node, running or not")
	ps := pubsubTopicFlag(fs, "pubsub topic of the scope (default: the running node's --pubsub-topic, or "+defaultPubsubTopic+" when no node runs)")
	ct := fs.String("content-topic", defaultContentTopic, "content topic of the scope")
	out := fs.String("out", "", "snapshot file to write (required); it appears whole or not at all")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError(fs, "--out is required")
	}
	path, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	view := newSnapshotView(s.err, isTerminal(s.err), time.Now)
	defer view.finish()
	c, err := runningNode(*dir)
	if err != nil {
		return err
	}
	var rep *exportReport
	if c != nil {
		rep, err = callSnapshot[exportReport](ctx, c, "/export", exportRequest{PubsubTopic: *ps, ContentTopic: *ct, Path: path}, view)
	} else {
		sc := reconcile.Scope{PubsubTopic: *ps, ContentTopic: *ct}
		if sc.PubsubTopic == "" {
			sc.PubsubTopic = defaultPubsubTopic
		}
		rep, err = exportLocal(view.context(ctx), *dir, sc, path)
	}
	view.finish()
	if err != nil {
		return interrupted(ctx, err)
	}
	if *asJSON {
		return printJSON(s.out, rep)
	}
	_, err = fmt.Fprintf(s.out, "exported %d messages of %s to %s: root %s, %s\n",
		rep.Count, scopeName(rep.snapshotFile), rep.Path, rep.Root, humanBytes(rep.Size))
	return err
}

// runImport stores the messages of a snapshot file: through the node
// running on --data if there is one, else straight into the store in
// --data, which it creates if need be. It shows the progress on standard
// error and prints a summary line, or with --json the report. A bad file
// fails with the reader's error and stores nothing; messages the store
// refuses make the exit status 1.
func runImport(ctx context.Context, args []string, s stdio) error {
	fs := newFlags("import", s.err)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: storesync import [flags] FILE\n\nFILE is a snapshot written by storesync export.")
		fs.PrintDefaults()
	}
	dir := fs.String("data", defaultDataDir, "data folder of the node, running or not")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError(fs, "want exactly one FILE, got %d arguments", len(pos))
	}
	path, err := filepath.Abs(pos[0])
	if err != nil {
		return err
	}
	view := newSnapshotView(s.err, isTerminal(s.err), time.Now)
	defer view.finish()
	c, err := runningNode(*dir)
	if err != nil {
		return err
	}
	var rep *importReport
	if c != nil {
		rep, err = callSnapshot[importReport](ctx, c, "/import", importRequest{Path: path}, view)
	} else {
		rep, err = importLocal(view.context(ctx), *dir, path)
	}
	view.finish()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: the same import goes on where this one stopped", errInterrupted)
		}
		return err
	}
	if *asJSON {
		if err := printJSON(s.out, rep); err != nil {
			return err
		}
	} else if err := printImport(s.out, rep); err != nil {
		return err
	}
	if rep.Rejected > 0 {
		fmt.Fprintf(s.err, "storesync import: the store refused %d messages; the first: %s\n", rep.Rejected, rep.RejectReason)
		return errReported
	}
	return nil
}

// printImport prints the summary line of an import.
func printImport(w io.Writer, rep *importReport) error {
	resumed := ""
	if rep.Resumed {
		resumed = fmt.Sprintf(", resumed at batch %d of %d (%d messages stored before)", rep.ResumedBatches, rep.Batches, rep.ResumedMessages)
	}
	_, err := fmt.Fprintf(w, "imported %d messages of %s from %s: added %d, duplicates %d, rejected %d%s; root %s verified; the scope now holds %d messages, root %s\n",
		rep.Count, scopeName(rep.snapshotFile), rep.Path, rep.Added, rep.Duplicates, rep.Rejected, resumed, rep.Root, rep.ScopeCount, rep.ScopeRoot)
	return err
}

// scopeName names a file's scope as "CONTENT (PUBSUB)".
func scopeName(f snapshotFile) string { return f.ContentTopic + " (" + f.PubsubTopic + ")" }

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// callSnapshot sends an export or import request to the node, shows the
// progress lines of its answer and returns its report, or the error it
// ended with.
func callSnapshot[R any](ctx context.Context, c *controlClient, path string, req any, view *snapshotView) (*R, error) {
	resp, err := c.send(ctx, http.MethodPost, path, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var line snapshotLine[R]
		if err := dec.Decode(&line); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("the node ended the stream without a report")
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

// context returns ctx reporting progress to the view, for an export or
// import in this process: the store reports from the calling goroutine.
func (v *snapshotView) context(ctx context.Context) context.Context {
	return protocol.WithProgress(ctx, func(p protocol.Progress) { v.update(*progressJSON(p)) })
}
