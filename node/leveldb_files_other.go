//go:build !unix

package node

// openTablesLimit is how many LevelDB tables a store keeps open: LevelDB's
// default where the process's limit of open files is not known.
func openTablesLimit() int { return 500 }
