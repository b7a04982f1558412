//go:build !unix

package main

import "os"

// rusageMaxRSSKiB reports nothing where the system gives no rusage.
func rusageMaxRSSKiB(*os.ProcessState) int64 { return 0 }

// selfPeakRSSKiB reports nothing where the system gives no rusage.
func selfPeakRSSKiB() int64 { return 0 }

// settle does nothing where there is no sync(2).
func settle() {}
