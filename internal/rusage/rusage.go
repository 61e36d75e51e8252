// Package rusage reads the CPU time the process has used, so benchmarks
// can report CPU per operation: on a machine shared with other work, wall
// time per operation moves with the others' load, CPU per operation much
// less.
//
//	start := rusage.CPU()
//	... b.N operations ...
//	rusage.Report(b, start)
package rusage

import (
	"syscall"
	"testing"
	"time"
)

// CPU returns the user and system CPU time the process has used, 0 when
// the system does not say.
func CPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Report adds the process's CPU time since start per b.N as the metric
// "cpu-ns/op" (every goroutine of the process counts: in-process servers
// and the benchmark's own callers alike).
func Report(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(CPU()-start)/float64(b.N), "cpu-ns/op")
}
