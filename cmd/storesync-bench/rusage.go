//go:build unix

package main

import (
	"os"
	"runtime"
	"syscall"
)

// rusageMaxRSSKiB returns ru_maxrss of an exited child process, from the
// rusage that wait4 returned for it, in KiB (ru_maxrss is in KiB on Linux
// and the BSDs, in bytes on macOS); 0 if the system did not report it.
// On Linux it is at least the parent's peak at the child's start (see
// vmHWMKiB).
func rusageMaxRSSKiB(ps *os.ProcessState) int64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0
	}
	return maxrssKiB(ru)
}

// selfPeakRSSKiB returns this process's own peak resident set size so
// far (getrusage(RUSAGE_SELF)), 0 if unknown.
func selfPeakRSSKiB() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return maxrssKiB(&ru)
}

func maxrssKiB(ru *syscall.Rusage) int64 {
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss) / 1024
	}
	return int64(ru.Maxrss)
}

// settle writes the dirty pages of the stages before to disk (sync(2)),
// so that a timed stage does not pay for their writeback.
func settle() { syscall.Sync() }
