package socket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// A stream that ends cleanly (the instance drained) while its events may
// still be queued or in flight is a gap too: every event published
// arrives, or the subscription gets a gap marker after the last that did.
// Each event is on a topic of its own, so no later event's seq would
// show the loss. Several rounds: the loss depends on timing.
func TestEventsDrainedStreamWithEventsQueuedIsAGap(t *testing.T) {
	t.Parallel()
	const rounds = 8
	lost := 0
	for round := range rounds {
		if arrived, n := drainWithEventsQueued(t); arrived < n {
			lost++
			t.Logf("round %d: %d of %d events arrived, then a gap marker", round, arrived, n)
		}
	}
	t.Logf("%d of %d drains lost events; each of them was followed by a gap marker", lost, rounds)
}

// drainWithEventsQueued drains a server while its handler publishes n
// events to a subscribed client, and returns how many arrived before a
// gap marker (n: all did). It fails when some are missing and no gap
// marker comes.
func drainWithEventsQueued(t *testing.T) (arrived, n int) {
	t.Helper()
	n = 200 // fewer than a stream's queue holds: none is dropped on publishing
	held, release := make(chan struct{}), make(chan struct{})
	var srv *socket.Server
	ts := sockettest.StartServer(t, sockettest.Spec{Register: func(s *socket.Server) {
		srv = s
		sockettest.RegisterEcho(t, s)
		must(t, s.Handle("BURST", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
			close(held)
			<-release // the drain has begun
			data := json.RawMessage(`"` + strings.Repeat("x", 1024) + `"`)
			for i := range n {
				if err := srv.Publish(fmt.Sprintf("x/%d", i), data, socket.Visibility{Public: true}); err != nil {
					return nil, err
				}
			}
			return json.RawMessage(`{}`), nil
		})))
	}})
	c := sockettest.DialServer(t, ts, caller.WithKey(sockettest.GatewayKey), caller.WithReadyWait(testDeadline))
	events, stop := collect(t, c, "x/*")
	defer stop()
	answered := make(chan error, 1)
	go func() {
		_, err := c.Request(sockettest.Context(t), "BURST", "1", nil)
		answered <- err
	}()
	<-held
	drained := make(chan struct{})
	go func() { ts.Shutdown(); close(drained) }()
	close(release)
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	<-drained
	got := map[string]bool{}
	for len(got) < n {
		e := next(t, events) // fails when neither the events nor a gap marker come
		if e.Gap && e.Data == nil {
			return len(got), n
		}
		got[e.Topic] = true
	}
	return n, n
}
