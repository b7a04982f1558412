//go:build unix

package node

import "syscall"

// openTablesLimit is how many LevelDB tables a store keeps open: a
// quarter of the open files the process may have (Go raises its soft
// limit to the hard one at start), from 500 (LevelDB's default) to
// 16,384. A table holds about 8 MiB, so 16,384 open tables cover 128 GiB.
func openTablesLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 500
	}
	return int(min(max(l.Cur/4, 500), 16384))
}
