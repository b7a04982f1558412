package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/storesync/storesync/node"
)

// runRepair rebuilds the trees and scope records of the store in a data
// folder from its messages (node.Repair): the way back from a store that
// a node refuses to open as corrupt. No node may run on the folder.
func runRepair(ctx context.Context, args []string, s stdio) error {
	flags := newFlags("repair", s.err)
	dir := flags.String("data", defaultDataDir, "data folder of the stopped node")
	if err := parse(flags, args); err != nil {
		return err
	}
	path := filepath.Join(*dir, "datastore")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no store in %s: no node ever ran with --data %s", *dir, *dir)
	}
	d, err := node.OpenLevelDB(path)
	if err != nil {
		return fmt.Errorf("%w (stop the node running with --data %s first)", err, *dir)
	}
	reps, err := node.Repair(ctx, d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// The columns of status, with what the repair counted.
	w := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "CONTENT TOPIC\tRECORDED\tMESSAGES\tDROPPED\tROOT\tPUBSUB TOPIC")
	for _, r := range reps {
		root := hex.EncodeToString(r.Root[:])[:16]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%s\n", r.Scope.ContentTopic, r.Recorded, r.Messages, r.Dropped, root, r.Scope.PubsubTopic)
	}
	return w.Flush()
}
