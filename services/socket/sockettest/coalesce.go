package sockettest

import (
	"reflect"
	"testing"
	"time"
)

// Flights is what WaitJoined watches: something that shares identical work
// and tells how many callers wait for work in flight, with a channel
// closed when the next one comes. streamgate's coalescing groups are.
type Flights interface {
	Waiting() (n int, next <-chan struct{})
}

// WaitJoined waits until n callers in all (summed) are in Do for work in
// flight, the ones running it included, so a test knows they share runs
// before it lets the runs end. It watches those groups alone, so tests in
// parallel that coalesce through others do not disturb it. It fails the
// test after 20 seconds.
func WaitJoined(t testing.TB, n int, all ...Flights) {
	t.Helper()
	timeout := time.NewTimer(deadline)
	defer timeout.Stop()
	cases := make([]reflect.SelectCase, len(all)+1)
	cases[len(all)] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout.C)}
	for {
		got := 0
		for i, c := range all {
			k, next := c.Waiting()
			got += k
			cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(next)}
		}
		if got >= n {
			return
		}
		if i, _, _ := reflect.Select(cases); i == len(all) {
			t.Fatalf("%d callers joined a flight, want %d", got, n)
		}
	}
}
