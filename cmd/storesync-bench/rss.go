package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// Peak memory of a child process.
//
// The rusage that wait4 returns for a child (ProcessState.SysUsage,
// ru_maxrss) is not the child's own peak on Linux: Go starts children with
// clone(CLONE_VM|CLONE_VFORK), and exec folds the high-water mark of the
// memory the child had before exec (the parent's) into the child's
// ru_maxrss. A child of a parent that peaked at 600 MiB reports at least
// 600 MiB, even /bin/true. The high-water mark of the child's own memory,
// VmHWM in /proc/<pid>/status, is what ru_maxrss would be for a child
// started from a small process; the tool reports that, and ru_maxrss next
// to the parent's own peak at the start of the child so that both can be
// compared.

// vmHWMKiB returns VmHWM, the peak resident set size, of the process pid
// ("self" for this one) from /proc, in KiB; 0 where there is no /proc or
// the process has exited.
func vmHWMKiB(pid string) int64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0
		}
		return kib
	}
	return 0
}
