package hub_test

import (
	"math/rand/v2"
	"sync/atomic"
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

// Many watchers join a topic and most leave in a random order: an event
// then reaches exactly the ones still watching, once each, and the last
// to leave ends the upstream.
func TestWatchersLeaveInAnyOrder(t *testing.T) {
	srv, c := startPublisher(t)
	const n = 1000
	var h hub.Hub
	ctx := t.Context()
	got := make([]atomic.Int32, n)
	all := make(chan struct{}, n)
	stops := make([]func(), n)
	for i := range n {
		stop, _, err := h.Watch(ctx, "orders", "orders/o1", c, func() *caller.Client { return c }, socket.Principal{}, true, func(hub.Event) {
			got[i].Add(1)
			all <- struct{}{}
		})
		if err != nil {
			t.Fatal(err)
		}
		stops[i] = stop
	}
	order := rand.Perm(n)
	left := order[:3*n/4]
	for _, i := range left {
		stops[i]()
	}
	if err := srv.Publish("orders/o1", map[string]int{"n": 1}, socket.Visibility{Public: true}); err != nil {
		t.Fatal(err)
	}
	for range n - len(left) {
		sockettest.Recv(t, all)
	}
	gone := map[int]bool{}
	for _, i := range left {
		gone[i] = true
	}
	for i := range n {
		if want := map[bool]int32{true: 0, false: 1}[gone[i]]; got[i].Load() != want {
			t.Fatalf("watcher %d (left %v) got %d events, want %d", i, gone[i], got[i].Load(), want)
		}
	}
	for _, i := range order[3*n/4:] {
		stops[i]()
	}
	if u := h.Upstreams(); u != 0 {
		t.Fatalf("%d upstreams after every watcher left, want 0", u)
	}
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
