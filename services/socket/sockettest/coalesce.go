package sockettest

import (
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
)

// WaitJoined waits until n callers in all (summed) are in Do for work in
// flight, the ones running it included, so a test knows they share runs
// before it lets the runs end. It watches those Coalescers alone, so tests
// in parallel that coalesce through others do not disturb it; give a
// server one with socket.WithCoalescer. It fails the test after 20 seconds.
func WaitJoined(t testing.TB, n int, all ...*socket.Coalescer) {
	t.Helper()
	end := time.Now().Add(deadline)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		got := 0
		for _, c := range all {
			got += c.Waiting()
		}
		if got >= n {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d callers joined a flight, want %d", got, n)
		}
		<-tick.C
	}
}
