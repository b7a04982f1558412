package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// runStatus prints the scopes of a running node as a table, or with
// --json the node's status object as it is (GET /v1/status), indented.
func runStatus(ctx context.Context, args []string, s stdio) error {
	fs := newFlags("status", s.err)
	dir := fs.String("data", defaultDataDir, "data folder of the running node")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := newControlClient(*dir)
	if err != nil {
		return err
	}
	var st statusResponse
	if err := c.call(ctx, http.MethodGet, "/status", nil, &st); err != nil {
		return err
	}
	if *asJSON {
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(s.out, "%s\n", b)
		return err
	}
	return printStatus(s.out, &st)
}

// printStatus prints the readable form of a status.
func printStatus(w io.Writer, st *statusResponse) error {
	fmt.Fprintf(w, "peer id: %s\n", st.PeerID)
	for _, a := range st.Addrs {
		fmt.Fprintf(w, "listening: %s\n", a)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTENT TOPIC\tCOUNT\tROOT\tNEWEST\tLAST SYNC\tPUBSUB TOPIC")
	for _, sc := range st.Scopes {
		root := sc.Root
		if len(root) > 16 {
			root = root[:16]
		}
		last := "never"
		if ls := sc.LastSync; ls != nil {
			last = fmt.Sprintf("%s with %s (received %d, sent %d)", ls.At.UTC().Format(time.RFC3339), shortPeer(ls.Peer), ls.Received, ls.Sent)
		}
		count := fmt.Sprint(sc.Count)
		if sc.Loading > 0 {
			count += fmt.Sprintf(" (+%d loading)", sc.Loading)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", sc.ContentTopic, count, root, formatTime(sc.Newest), last, sc.PubsubTopic)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, g := range st.Groups {
		kind := "group"
		if g.Private {
			kind = "private group"
		}
		fmt.Fprintf(w, "\n%s %s (%s), last announced %s\n", kind, g.Name, strings.Join(g.ContentTopics, ", "), when(g.LastAnnounced))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  MEMBER\tLAST ANNOUNCEMENT\tLAST SYNC\tIN SYNC")
		for _, m := range g.Members {
			sync := when(m.LastSync)
			if m.LastError != "" {
				sync += " (failed: " + m.LastError + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%t\n", m.Peer, when(m.LastAnnouncement), sync, m.InSync)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// when formats an optional time for a table.
func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// shortPeer abbreviates a peer ID for a table: its start and its end are
// enough to tell the peers of one network apart at a glance.
func shortPeer(id string) string {
	if len(id) <= 20 {
		return id
	}
	return id[:8] + "…" + id[len(id)-8:]
}
