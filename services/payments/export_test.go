package payments

import (
	"testing"
	"time"
)

// AwaitSandboxWaiting waits until done holds for the number of requests
// waiting in sb, looking again each time it changes; it fails the test
// after 5 seconds.
func AwaitSandboxWaiting(t testing.TB, sb *Sandbox, done func(waiting int) bool) {
	t.Helper()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		sb.mu.Lock()
		n, changed := sb.waiting, sb.waitChanged
		sb.mu.Unlock()
		if done(n) {
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("%d requests wait in the sandbox", n)
		}
	}
}
