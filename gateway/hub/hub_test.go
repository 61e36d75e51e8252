package hub_test

import (
	"testing"

	"github.com/streamgate/streamgate/gateway/hub"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// startPublisher serves a service whose events a hub can watch.
func startPublisher(t testing.TB) (*socket.Server, *caller.Client) {
	t.Helper()
	srv, err := socket.NewServer(socket.Config{Name: "orders"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	return srv, sockettest.Start(t, srv)
}

// BenchmarkWatchersJoinAndLeave measures a topic's watchers joining and
// leaving: each costs O(1) amortized, not a copy of the topic's list.
func BenchmarkWatchersJoinAndLeave(b *testing.B) {
	_, c := startPublisher(b)
	ctx := b.Context()
	const n = 10000
	for b.Loop() {
		var h hub.Hub
		stops := make([]func(), n)
		for i := range n {
			stop, _, err := h.Watch(ctx, "orders", "orders/o1", c, func() *caller.Client { return c }, socket.Principal{}, true, func(hub.Event) {})
			if err != nil {
				b.Fatal(err)
			}
			stops[i] = stop
		}
		for _, stop := range stops {
			stop()
		}
	}
}
