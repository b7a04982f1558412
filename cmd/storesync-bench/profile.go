package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// childProfileEnv names the environment variable through which -cpuprofile
// reaches the child processes: each writes its profile to the variable's
// value followed by "." and its kind.
const childProfileEnv = "STORESYNC_BENCH_CHILD_CPUPROFILE"

// startCPUProfile starts a CPU profile into a new file at path and returns
// the function that stops it and closes the file, or nil, after saying
// why on stderr, when it cannot.
func startCPUProfile(path string) func() {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpu profile:", err)
		return nil
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "cpu profile:", err)
		f.Close()
		return nil
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
