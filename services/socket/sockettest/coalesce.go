package sockettest

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

// WaitJoined waits until n goroutines wait in socket.Coalescer.Do for a
// result: parked in its select, after they joined a flight. Each of
// frames must appear in the goroutine's stack, so a test can count its
// own callers (its function name) or a layer's (e.g. "(*Server).run(").
// It fails the test after 20 seconds. It counts every goroutine in the
// process: tests that use it should not run in parallel with others that
// coalesce.
func WaitJoined(t testing.TB, n int, frames ...string) {
	t.Helper()
	frames = append(frames, "socket.(*Coalescer).Do(")
	end := time.Now().Add(deadline)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		got := parkedIn(frames)
		if got >= n {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d goroutines joined a flight in %v, want %d", got, frames, n)
		}
		<-tick.C
	}
}

// parkedIn counts the goroutines parked in a select whose stacks hold
// every frame.
func parkedIn(frames []string) int {
	buf := make([]byte, 4<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		header, _, _ := bytes.Cut(g, []byte("\n"))
		if !bytes.Contains(header, []byte("[select")) {
			continue
		}
		all := true
		for _, f := range frames {
			if !bytes.Contains(g, []byte(f)) {
				all = false
				break
			}
		}
		if all {
			count++
		}
	}
	return count
}
