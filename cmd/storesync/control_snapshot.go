package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/storesync/storesync/protocol"
)

// maxSnapshotBody bounds the body of an export or import request.
const maxSnapshotBody = 64 << 10

// handleExport serves POST /v1/export: it checks the request and the
// scope, then streams the export's progress and its report.
func (c *controlServer) handleExport(w http.ResponseWriter, r *http.Request) {
	var req exportRequest
	if err := decodeBody(w, r, maxSnapshotBody, &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	if err := checkPath(req.Path); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	sc, err := c.scope(req.PubsubTopic, req.ContentTopic)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	streamSnapshot(c, w, r, func(ctx context.Context) (*exportReport, error) {
		start := time.Now()
		h, err := c.node.Export(ctx, sc, req.Path)
		if err != nil {
			return nil, err
		}
		return exportJSON(req.Path, h, time.Since(start)), nil
	})
}

// handleImport serves POST /v1/import: it checks that the file exists,
// then streams the import's progress and its report. A bad file is
// reported on the stream's last line, with the reader's error.
func (c *controlServer) handleImport(w http.ResponseWriter, r *http.Request) {
	var req importRequest
	if err := decodeBody(w, r, maxSnapshotBody, &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	if err := checkPath(req.Path); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	if fi, err := os.Stat(req.Path); err != nil || !fi.Mode().IsRegular() {
		writeError(w, http.StatusBadRequest, badInput("path %q is not a file the node can read", req.Path))
		return
	}
	streamSnapshot(c, w, r, func(ctx context.Context) (*importReport, error) {
		rep, err := c.node.Import(ctx, req.Path)
		if err != nil {
			return nil, err
		}
		return importJSON(req.Path, rep), nil
	})
}

// checkPath accepts an absolute path: the node's working folder is none
// of the client's business.
func checkPath(p string) error {
	switch {
	case p == "":
		return badInput("path is required")
	case !filepath.IsAbs(p):
		return badInput("path %q is not absolute", p)
	}
	return nil
}

// streamSnapshot answers with a stream of JSON lines, like a sync: the
// progress of run, then the line run returns or the error line. Hanging
// up, or the node shutting down, cancels run; an import cut short that
// way resumes when asked again.
func streamSnapshot[R any](c *controlServer, w http.ResponseWriter, r *http.Request, run func(context.Context) (*R, error)) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(c.stopping, cancel)()

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	out := &lineWriter{w: w, rc: http.NewResponseController(w)}
	out.flush()
	pump := newPhasePump()
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		pump.run(func(pr protocol.Progress) { out.write(snapshotLine[R]{Progress: progressJSON(pr)}) })
	}()
	rep, err := run(protocol.WithProgress(ctx, pump.note))
	pump.close()
	<-pumped
	switch {
	case err != nil && c.stopping.Err() != nil:
		out.write(snapshotLine[R]{Error: "node shutting down: " + err.Error()})
	case err != nil:
		out.write(snapshotLine[R]{Error: err.Error()})
	default:
		out.write(snapshotLine[R]{Report: rep})
	}
}

func progressJSON(p protocol.Progress) *snapshotProgress {
	return &snapshotProgress{Kind: string(p.Kind), PubsubTopic: p.Scope.PubsubTopic, ContentTopic: p.Scope.ContentTopic,
		Done: p.Done, Total: p.Total, Bytes: p.Bytes}
}
