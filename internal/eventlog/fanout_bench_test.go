package eventlog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway/hub"
	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/internal/rusage"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/natsserve"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// fanoutWindow bounds the events published and not yet delivered to
// every watcher.
const fanoutWindow = 64

// fanoutTopic is the one topic the watchers watch.
const fanoutTopic = "orders/o1"

// fanoutCount counts deliveries and signals each one (at most one signal
// waits).
type fanoutCount struct {
	delivered atomic.Int64
	progress  chan struct{}
}

func newFanoutCount() *fanoutCount { return &fanoutCount{progress: make(chan struct{}, 1)} }

func (c *fanoutCount) add() {
	c.delivered.Add(1)
	select {
	case c.progress <- struct{}{}:
	default:
	}
}

// BenchmarkFanout has one service publish b.N events of one topic, which
// each of N watchers at a gateway receives, over the two paths an event
// takes to a gateway:
//
//   - direct: the service's stream to the gateway (caller.Subscribe
//     through gateway/hub, one upstream subscription for the N watchers);
//   - jetstream: the service stores each event in JetStream
//     (natsserve.WithEvents, one acknowledged publish at a time) and the
//     gateway's Log reads it with one ordered consumer shared by the N
//     watchers (an embedded NATS server).
//
// An event counts when all N watchers have it; at most fanoutWindow
// events are outstanding. Besides ns/op (per event) it reports
// deliveries/s and cpu-ns/delivery: the whole process's CPU (service,
// NATS server, gateway side) per event per watcher.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			b.Run("direct", func(b *testing.B) {
				publish, c := watchDirect(b, n)
				benchFanout(b, n, publish, c)
			})
			b.Run("jetstream", func(b *testing.B) {
				publish, c := watchJetStream(b, n)
				benchFanout(b, n, publish, c)
			})
		})
	}
}

// benchFanout publishes b.N events with publish and waits until the n
// watchers counted by c have all of them.
func benchFanout(b *testing.B, n int, publish func(data json.RawMessage) error, c *fanoutCount) {
	data := json.RawMessage(`{"id":"o1","status":"paid","total_cents":1250}`)
	want := func(events int) int64 { return int64(events) * int64(n) }
	wait := func(events int) {
		timer := time.NewTimer(20 * time.Second)
		defer timer.Stop()
		for c.delivered.Load() < want(events) {
			select {
			case <-c.progress:
			case <-timer.C:
				b.Fatalf("%d of %d deliveries after 20s", c.delivered.Load(), want(events))
			}
		}
	}
	start := rusage.CPU()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent++ {
		if sent >= fanoutWindow {
			wait(sent - fanoutWindow + 1)
		}
		if err := publish(data); err != nil {
			b.Fatal(err)
		}
	}
	wait(b.N)
	b.StopTimer()
	cpu := rusage.CPU() - start
	elapsed := b.Elapsed()
	deliveries := float64(want(b.N))
	b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu)/deliveries, "cpu-ns/delivery")
	if got := c.delivered.Load(); got != want(b.N) {
		b.Fatalf("%d deliveries, want %d", got, want(b.N))
	}
}

// watchDirect starts a socket server and n watchers of its topic through
// a hub over one client's stream, and returns how to publish and the
// count of deliveries.
func watchDirect(b *testing.B, n int) (func(json.RawMessage) error, *fanoutCount) {
	ts := sockettest.StartServer(b, sockettest.Spec{Name: "orders"})
	client, err := caller.Dial(ts.Addr, caller.WithKey(sockettest.GatewayKey))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Close() })
	// A request answered: the stream is open, so the subscription is
	// acknowledged before Watch returns (events published before a
	// stream opens reach nobody).
	if _, err := client.Request(b.Context(), "ECHO", "1", sockettest.EchoIn{Text: "ready"}); err != nil {
		b.Fatal(err)
	}
	var h hub.Hub
	b.Cleanup(h.Close)
	c := newFanoutCount()
	current := func() *caller.Client { return client }
	for i := range n {
		stop, _, err := h.Watch(b.Context(), "orders", fanoutTopic, client, current, socket.Principal{Subject: fmt.Sprint("w", i)}, false, func(ev hub.Event) { // every event, as the log delivers
			if !ev.Gap {
				c.add()
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(stop)
	}
	vis := socket.Visibility{Public: true}
	return func(data json.RawMessage) error { return ts.Publish(fanoutTopic, data, vis) }, c
}

// watchJetStream starts an embedded NATS server with JetStream, a service
// storing its events there, and n watchers of its topic on one Log.
func watchJetStream(b *testing.B, n int) (func(json.RawMessage) error, *fanoutCount) {
	url := embeddedNATS(b)
	g := openGateway(b, url, eventlog.DefaultRoot, eventlog.Window{Prefix: "orders", MaxAge: time.Minute})
	c := newFanoutCount()
	for range n {
		_, stop, err := g.log.Watch(b.Context(), fanoutTopic, eventlog.Position{}, func(ev eventlog.Event) {
			if !ev.Ended {
				c.add()
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(stop)
	}
	srv, err := socket.NewServer(socket.Config{Name: "orders"}, socket.WithoutAuth())
	if err != nil {
		b.Fatal(err)
	}
	sockettest.RegisterEcho(b, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, natsserve.Listen(natstest.Connect(b, url), nil, natsserve.WithEvents("")))
	}()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	natstest.WaitService(b, natstest.Connect(b, url), "orders", 1, 1)
	vis := socket.Visibility{Public: true}
	return func(data json.RawMessage) error { return srv.Publish(fanoutTopic, data, vis) }, c
}
