package main

import (
	"fmt"
	"io"
	"time"
)

// snapshotView shows the progress of an export or import: a line naming
// each phase as it starts (an import verifies the whole file, then stores
// it), then that phase's progress as a progressView draws it, a bar with
// rate and ETA on a terminal and plain lines elsewhere. It is not safe
// for concurrent use.
type snapshotView struct {
	w        io.Writer
	terminal bool
	now      func() time.Time
	kind     string
	phase    *progressView
	// unshown says the phase's last event was throttled away, so that
	// plain output ends a phase with its final state.
	unshown bool
}

func newSnapshotView(w io.Writer, terminal bool, now func() time.Time) *snapshotView {
	return &snapshotView{w: w, terminal: terminal, now: now}
}

// update takes one progress event.
func (v *snapshotView) update(p snapshotProgress) {
	if p.Kind != v.kind || v.phase == nil {
		v.finish()
		v.kind = p.Kind
		fmt.Fprintln(v.w, phaseLine(p))
		v.phase = newProgressView(v.w, v.terminal, v.now)
	}
	shown := v.phase.last
	v.phase.update(syncProgress{PubsubTopic: p.PubsubTopic, ContentTopic: p.ContentTopic, Done: p.Done, Total: p.Total, Bytes: p.Bytes})
	v.unshown = v.phase.last == shown
}

// finish ends the phase on screen; calling it again does nothing.
func (v *snapshotView) finish() {
	if v.phase != nil {
		if !v.terminal && v.unshown {
			v.phase.show(v.now())
		}
		v.phase.finish()
		v.phase = nil
	}
}

// phaseLine names the phase an event starts.
func phaseLine(p snapshotProgress) string {
	scope := p.ContentTopic + " (" + p.PubsubTopic + ")"
	switch p.Kind {
	case "export":
		return "exporting " + scope
	case "verify":
		return "verifying the file: nothing is stored until all of it checks out"
	case "import":
		return "storing " + scope
	}
	return p.Kind + " " + scope
}
