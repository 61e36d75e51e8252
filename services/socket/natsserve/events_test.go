package natsserve_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/internal/promtest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/natsserve"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// onJetStream runs a test against an embedded NATS server with
// JetStream, then against the CI server (STREAMGATE_TEST_NATS) when it
// is set.
func onJetStream(t *testing.T, test func(t *testing.T, url string)) {
	t.Run("embedded", func(t *testing.T) { test(t, natstest.EmbeddedJetStream(t)) })
	t.Run("ci", func(t *testing.T) {
		if os.Getenv(natstest.EnvURL) == "" {
			t.Skipf("%s is not set: no NATS server of CI's to test against", natstest.EnvURL)
		}
		test(t, natstest.External(t))
	})
}

// eventService is a server storing its events in JetStream.
type eventService struct {
	srv    *socket.Server
	reg    *prometheus.Registry
	stream string // the gRPC stream's address, when served beside NATS
	stop   func() // drains the server and waits for Serve
}

// startEventService serves a service named name over nc with
// WithEvents (and over a loopback stream when withStream), and waits
// until an instance answers grants: it stores its events from then on.
func startEventService(t *testing.T, name string, nc *nats.Conn, withStream bool, opts ...natsserve.Option) *eventService {
	t.Helper()
	es := &eventService{reg: prometheus.NewRegistry()}
	srv, err := socket.NewServer(socket.Config{Name: name, Version: "1.0.0"},
		socket.WithKeys(sockettest.Keys(t)), socket.WithMetrics(es.reg), socket.WithDrainTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	es.srv = srv
	sockettest.RegisterEcho(t, srv)
	var lis net.Listener
	if withStream {
		if lis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		es.stream = lis.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, natsserve.Listen(nc, lis, append([]natsserve.Option{natsserve.WithEvents("")}, opts...)...))
	}()
	stopped := false
	es.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(es.stop)
	awaitGrants(t, nc, name)
	return es
}

// awaitGrants waits (20s at most) until an instance of the service
// answers which events a key may receive.
func awaitGrants(t *testing.T, nc *nats.Conn, name string) {
	t.Helper()
	subject := "streamgate." + name + ".$EVENTS"
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		_, err := nc.Request(subject, nil, time.Second)
		if err == nil {
			return
		}
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
		if errors.Is(err, nats.ErrNoResponders) {
			// The subscription is on its way to the server: ask again
			// once it has had a round trip's time.
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatalf("no instance of %s answered grants", name)
}

// gatewayLog opens the event log the way a gateway does, with one window
// for prefix, whose stream is deleted when the test ends.
func gatewayLog(t *testing.T, nc *nats.Conn, prefix string) (*eventlog.Log, jetstream.JetStream) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := sockettest.Context(t)
	l, err := eventlog.Open(ctx, js, []eventlog.Window{{Prefix: prefix, MaxAge: 10 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	name, err := js.StreamNameBySubject(ctx, eventlog.Subject(eventlog.DefaultRoot, prefix+"/x"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, name)
	})
	return l, js
}

// watch collects a topic's events from now on.
func watch(t *testing.T, l *eventlog.Log, topic string) <-chan eventlog.Event {
	t.Helper()
	ch := make(chan eventlog.Event, 8192)
	_, stop, err := l.Watch(sockettest.Context(t), topic, eventlog.Position{}, func(e eventlog.Event) {
		select {
		case ch <- e:
		default:
			t.Errorf("the test's watcher of %s is full", topic)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ch
}

// next is the next event of ch, failing the test after 20s.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s within 20s", what)
	}
	var zero T
	return zero
}

// storing starts a service that stores its events on an embedded NATS
// server, with a window for prefix whose topic prefix/o1 is watched.
func storing(t *testing.T, withStream bool, opts ...natsserve.Option) (es *eventService, prefix string, stored <-chan eventlog.Event) {
	t.Helper()
	url := natstest.EmbeddedJetStream(t)
	name := natstest.UniqueName("evsvc")
	prefix = natstest.UniqueName("ev")
	l, _ := gatewayLog(t, natstest.Connect(t, url), prefix)
	stored = watch(t, l, prefix+"/o1")
	return startEventService(t, name, natstest.Connect(t, url), withStream, opts...), prefix, stored
}

// count is a counter's value in the service's metrics.
func (es *eventService) count(t *testing.T, name string) float64 {
	t.Helper()
	return promtest.Gather(t, es.reg).Value(name)
}

func TestEventsStoredInOrderWithHeaders(t *testing.T) {
	onJetStream(t, func(t *testing.T, url string) {
		name, prefix := natstest.UniqueName("evsvc"), natstest.UniqueName("ev")
		topic := prefix + "/o1"
		l, js := gatewayLog(t, natstest.Connect(t, url), prefix)
		events := watch(t, l, topic)
		es := startEventService(t, name, natstest.Connect(t, url), false)

		visibilities := []socket.Visibility{{Public: true}, {Subjects: []string{"u1"}, Roles: []string{"admin"}}, {}}
		wantVis := []string{`{"public":true}`, `{"subjects":["u1"],"roles":["admin"]}`, `{}`}
		const n = 200
		for i := range n {
			if err := es.srv.Publish(topic, map[string]int{"n": i}, visibilities[i%3]); err != nil {
				t.Fatal(err)
			}
		}
		var first eventlog.Event
		var lastSeq uint64
		for i := range n {
			e := next(t, events, "stored event")
			if i == 0 {
				first = e
			}
			h := e.Header
			seq := strconv.Itoa(i + 1)
			if string(e.Data) != fmt.Sprintf(`{"n":%d}`, i) || h.Get(eventlog.HeaderSeq) != seq {
				t.Fatalf("event %d: data %s, Streamgate-Seq %s; want n %d, seq %s (in order)", i, e.Data, h.Get(eventlog.HeaderSeq), i, seq)
			}
			if e.Seq <= lastSeq {
				t.Fatalf("event %d: stream seq %d after %d", i, e.Seq, lastSeq)
			}
			lastSeq = e.Seq
			inst := h.Get(eventlog.HeaderInstance)
			if h.Get(eventlog.HeaderTopic) != topic || h.Get(eventlog.HeaderService) != name || inst == "" || inst != first.Header.Get(eventlog.HeaderInstance) {
				t.Fatalf("event %d headers %v; want topic %s, service %s, one instance", i, h, topic, name)
			}
			if got := h.Get(eventlog.HeaderVisibility); got != wantVis[i%3] {
				t.Errorf("event %d: Streamgate-Visibility %s; want %s", i, got, wantVis[i%3])
			}
			if id := h.Get("Nats-Msg-Id"); id != name+"/"+inst+"/"+strconv.Itoa(i+1) {
				t.Errorf("event %d: Nats-Msg-Id %q; want SERVICE/INSTANCE/N, the nth event the instance stored", i, id)
			}
		}

		// A retried store carries the same id: JetStream keeps the first.
		again, err := l.PublishMsg(sockettest.Context(t), eventlog.Message{
			Topic: topic, Data: first.Data, ID: first.Header.Get("Nats-Msg-Id"), Header: nats.Header{eventlog.HeaderSeq: {"1"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if again != first.Seq {
			t.Errorf("the retried event was stored as seq %d; want the first's, %d", again, first.Seq)
		}
		stream, err := js.StreamNameBySubject(sockettest.Context(t), eventlog.Subject(eventlog.DefaultRoot, topic))
		if err != nil {
			t.Fatal(err)
		}
		info, err := js.Stream(sockettest.Context(t), stream)
		if err != nil {
			t.Fatal(err)
		}
		if msgs := info.CachedInfo().State.Msgs; msgs != n {
			t.Errorf("the stream holds %d events; want %d (each stored once)", msgs, n)
		}
		es.stop()
		if stored := es.count(t, "streamgate_service_events_stored_total"); stored != n {
			t.Errorf("events stored: %v; want %d", stored, n)
		}
	})
}

func TestEventOfNoStreamReachesDirectSubscribers(t *testing.T) {
	es, prefix, stored := storing(t, true)
	c := sockettest.Dial(t, es.stream)
	if _, err := c.Request(sockettest.Context(t), "ECHO", "", nil); err != nil {
		t.Fatal(err) // the stream is open: Subscribe waits for its acknowledgement
	}
	direct := sockettest.Events(t, c, "*")

	unheld := natstest.UniqueName("nowindow") + "/o1"
	must(t, es.srv.Publish(unheld, map[string]bool{"lost": false}, socket.Visibility{Public: true}))
	must(t, es.srv.Publish(prefix+"/o1", map[string]bool{"held": true}, socket.Visibility{Public: true}))

	if e := direct(); e.Topic != unheld || string(e.Data) != `{"lost":false}` {
		t.Errorf("the direct subscriber got %+v first; want the event of %s", e, unheld)
	}
	if e := direct(); e.Topic != prefix+"/o1" {
		t.Errorf("the direct subscriber got %+v second", e)
	}
	// Events are stored in order: once the second is stored, the first
	// has been given up on, and counted.
	if e := next(t, stored, "stored event"); string(e.Data) != `{"held":true}` {
		t.Errorf("stored %s; want the second event", e.Data)
	}
	if failed := es.count(t, "streamgate_service_events_store_failed_total"); failed != 1 {
		t.Errorf("events not stored: %v; want 1 (the topic no stream holds)", failed)
	}
}

func TestDrainStoresQueuedEvents(t *testing.T) {
	es, prefix, stored := storing(t, false)
	const n = 500
	for i := range n {
		must(t, es.srv.Publish(prefix+"/o1", i, socket.Visibility{}))
	}
	es.stop() // at once: most events are still queued
	if got := es.count(t, "streamgate_service_events_stored_total"); got != n {
		t.Errorf("events stored when Serve returned: %v; want %d", got, n)
	}
	for i := range n {
		if e := next(t, stored, "stored event"); string(e.Data) != strconv.Itoa(i) {
			t.Fatalf("stored event %d is %s", i, e.Data)
		}
	}
}

func TestFullQueueDropsCounted(t *testing.T) {
	es, prefix, stored := storing(t, false, natsserve.WithEventQueue(4))
	const n = 2000
	start := time.Now()
	for i := range n {
		// Publish returns at once, whatever JetStream does.
		must(t, es.srv.Publish(prefix+"/o1", i, socket.Visibility{}))
	}
	publishing := time.Since(start)
	es.stop()
	s, f, d := es.count(t, "streamgate_service_events_stored_total"), es.count(t, "streamgate_service_events_store_failed_total"),
		es.count(t, "streamgate_service_events_store_dropped_total")
	if s+f+d != n || d == 0 || s == 0 {
		t.Fatalf("stored %v, failed %v, dropped %v of %d (published in %v); want all counted, some dropped, some stored", s, f, d, n, publishing)
	}
	last := -1
	for range int(s) {
		e := next(t, stored, "stored event")
		i, err := strconv.Atoi(string(e.Data))
		if err != nil || i <= last {
			t.Fatalf("stored event %s after %d: want increasing", e.Data, last)
		}
		last = i
	}
}

func TestSubscribeOverNATS(t *testing.T) {
	onJetStream(t, func(t *testing.T, url string) {
		name, other := natstest.UniqueName("evsvc"), natstest.UniqueName("evother")
		topic := natstest.UniqueName("ev") + "/o1"
		es := startEventService(t, name, natstest.Connect(t, url), false)
		otherSvc := startEventService(t, other, natstest.Connect(t, url), false)
		nc := natstest.Connect(t, url)
		gw := sockettest.Events(t, dialNamed(t, name, nc, sockettest.GatewayKey), "*")
		plain := sockettest.Events(t, dialNamed(t, name, nc, sockettest.TestKey), topic)
		_, err := dialNamed(t, name, nc, sockettest.ReaderKey).Subscribe(sockettest.Context(t), topic, func(caller.Event) {})
		sockettest.WantCode(t, err, status.CodePermissionDenied)

		must(t, otherSvc.srv.Publish(topic, "other service", socket.Visibility{Public: true}))
		must(t, es.srv.Publish(topic, "owner only", socket.Visibility{Subjects: []string{"u1"}}))
		must(t, es.srv.Publish(topic, "to the test key", socket.Visibility{Subjects: []string{"test"}}))
		must(t, es.srv.Publish(topic, "to services", socket.Visibility{Roles: []string{"service"}}))

		for i, want := range []string{`"owner only"`, `"to the test key"`, `"to services"`} {
			e := gw()
			if e.Topic != topic || string(e.Data) != want || e.Seq != uint64(i+1) || e.Gap {
				t.Errorf("delegating key's event %d: %+v; want %s, seq %d, of %s only", i, e, want, i+1, name)
			}
			if i == 2 && (len(e.Visibility.Roles) != 1 || e.Visibility.Roles[0] != "service") {
				t.Errorf("visibility %+v; want role service", e.Visibility)
			}
		}
		for i, want := range []string{`"to the test key"`, `"to services"`} {
			// Events the key may not see are no gap.
			if e := plain(); string(e.Data) != want || e.Seq != uint64(i+2) || e.Gap {
				t.Errorf("the test key's event %d: %+v; want %s, seq %d, no gap", i, e, want, i+2)
			}
		}
	})
}

func TestSubscribeCyclesLeakNothing(t *testing.T) {
	url := natstest.EmbeddedJetStream(t)
	name, topic := natstest.UniqueName("evsvc"), natstest.UniqueName("ev")+"/o1"
	es := startEventService(t, name, natstest.Connect(t, url), false)
	nc := natstest.Connect(t, url)
	c := dialNamed(t, name, nc, sockettest.GatewayKey)
	ctx := sockettest.Context(t)
	// The first Subscribe asks for the client's grant: a request, whose
	// replies share one subscription of the connection's from then on.
	stop, err := c.Subscribe(ctx, topic, func(caller.Event) {})
	must(t, err)
	stop()
	baseline := nc.NumSubscriptions()
	ignore := goleak.IgnoreCurrent()
	const cycles = 10_000
	deadline := time.Now().Add(3 * time.Minute)
	for i := range cycles {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribe/unsubscribe cycles took over 3 minutes", i)
		}
		stop, err := c.Subscribe(ctx, topic, func(caller.Event) {})
		if err != nil {
			t.Fatal(err)
		}
		stop()
	}
	if n := nc.NumSubscriptions(); n != baseline {
		t.Errorf("subscriptions after %d cycles: %d; want %d", cycles, n, baseline)
	}
	// An ended subscription's goroutine has been told to go, and goes
	// when next scheduled: on a loaded machine that can take longer than
	// goleak's own retries (about half a second), so wait for it first.
	for deadline := time.Now().Add(10 * time.Second); goleak.Find(ignore) != nil && time.Now().Before(deadline); {
		<-time.After(20 * time.Millisecond)
	}
	goleak.VerifyNone(t, ignore)
	// The client still subscribes.
	got := sockettest.Events(t, c, topic)
	must(t, es.srv.Publish(topic, "after", socket.Visibility{}))
	if e := got(); string(e.Data) != `"after"` {
		t.Errorf("event after the cycles: %+v", e)
	}
}

// BenchmarkStoreEvents measures how fast one instance stores events in
// JetStream (embedded server): batches of 1,000 published at once, each
// waited for until a gateway's watcher has it.
//
//	go test -run '^$' -bench StoreEvents ./services/socket/natsserve/
func BenchmarkStoreEvents(b *testing.B) {
	url := natstest.EmbeddedJetStream(b)
	name, prefix := natstest.UniqueName("evsvc"), natstest.UniqueName("ev")
	js, err := jetstream.New(natstest.Connect(b, url))
	if err != nil {
		b.Fatal(err)
	}
	l, err := eventlog.Open(context.Background(), js, []eventlog.Window{{Prefix: prefix, MaxAge: time.Minute}})
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan struct{}, 1000)
	_, stop, err := l.Watch(context.Background(), prefix+"/o1", eventlog.Position{}, func(eventlog.Event) { got <- struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	srv, err := socket.NewServer(socket.Config{Name: name}, socket.WithoutAuth())
	if err != nil {
		b.Fatal(err)
	}
	sockettest.RegisterEcho(b, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, natsserve.Listen(natstest.Connect(b, url), nil, natsserve.WithEvents("")))
	}()
	defer func() { cancel(); <-done }()
	natstest.WaitService(b, natstest.Connect(b, url), name, 1, 1)
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		batch := min(1000, b.N-sent)
		for range batch {
			if err := srv.Publish(prefix+"/o1", sent, socket.Visibility{}); err != nil {
				b.Fatal(err)
			}
		}
		for range batch {
			select {
			case <-got:
			case <-time.After(20 * time.Second):
				b.Fatal("an event was not stored within 20s")
			}
		}
		sent += batch
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestEventOfNoStreamWithNATSSubscriber checks an event of a topic no
// stream holds while something subscribes to its subject over NATS: the
// subscriber is no stream, so nothing says "no stream" to the store,
// which must learn it otherwise and send the event once, not wait for an
// acknowledgement attempt after attempt with every later event queued
// behind it.
func TestEventOfNoStreamWithNATSSubscriber(t *testing.T) {
	url := natstest.EmbeddedJetStream(t)
	prefix := natstest.UniqueName("ev")
	l, _ := gatewayLog(t, natstest.Connect(t, url), prefix)
	stored := watch(t, l, prefix+"/o1")
	es := startEventService(t, natstest.UniqueName("evsvc"), natstest.Connect(t, url), false)

	unheld := natstest.UniqueName("nowindow") + "/o1"
	copies := make(chan *nats.Msg, 16)
	nc := natstest.Connect(t, url)
	sub, err := nc.ChanSubscribe(eventlog.Subject(eventlog.DefaultRoot, unheld), copies)
	must(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	must(t, nc.Flush())

	must(t, es.srv.Publish(unheld, "first", socket.Visibility{Public: true}))
	must(t, es.srv.Publish(prefix+"/o1", "stored", socket.Visibility{Public: true}))
	must(t, es.srv.Publish(unheld, "last", socket.Visibility{Public: true}))
	if e := next(t, stored, "stored event"); string(e.Data) != `"stored"` {
		t.Fatalf("stored %s; want the second event", e.Data)
	}
	// One connection's messages reach a subscriber in order: count the
	// copies of the first before the last.
	firsts := 0
	for m := next(t, copies, "an event on the unheld subject"); string(m.Data) != `"last"`; m = next(t, copies, "the last event on the unheld subject") {
		firsts++
	}
	if firsts != 1 {
		t.Errorf("the first event of %s went out %d times on its subject; want once", unheld, firsts)
	}
	// The store counts the last one once it was sent.
	for deadline := time.Now().Add(10 * time.Second); es.count(t, "streamgate_service_events_store_failed_total") != 2; {
		if time.Now().After(deadline) {
			t.Fatalf("events not stored: %v; want 2", es.count(t, "streamgate_service_events_store_failed_total"))
		}
		<-time.After(10 * time.Millisecond)
	}
}

// A write's answer comes once the events it published are stored: a
// caller's next write, perhaps served by another instance, publishes
// after them, so a topic's events are stored in the order of the writes
// (the fleet's events resumed out of order without it).
func TestAnswerComesAfterItsEventsAreStored(t *testing.T) {
	url := natstest.EmbeddedJetStream(t)
	nc := natstest.Connect(t, url)
	name, prefix := natstest.UniqueName("evsvc"), natstest.UniqueName("ev")
	topic := prefix + "/o1"
	_, js := gatewayLog(t, nc, prefix)
	srv, err := socket.NewServer(socket.Config{Name: name, Version: "1.0.0"}, socket.WithKeys(sockettest.Keys(t)))
	if err != nil {
		t.Fatal(err)
	}
	n := 0 // the handler's writes, one at a time
	must(t, srv.Handle("TOUCH", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
		n++
		if err := srv.Publish(topic, map[string]int{"n": n}, socket.Visibility{Public: true}); err != nil {
			return nil, err
		}
		return json.Marshal(n)
	})))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, natsserve.Listen(natstest.Connect(t, url), nil, natsserve.WithEvents("")))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	awaitGrants(t, nc, name)
	stream, err := js.StreamNameBySubject(sockettest.Context(t), eventlog.Subject(eventlog.DefaultRoot, topic))
	must(t, err)
	s, err := js.Stream(sockettest.Context(t), stream)
	must(t, err)
	c := dialNamed(t, name, nc, sockettest.GatewayKey)
	for i := 1; i <= 50; i++ {
		if _, err := c.Request(sockettest.Context(t), "TOUCH", "", nil); err != nil {
			t.Fatal(err)
		}
		m, err := s.GetLastMsgForSubject(sockettest.Context(t), eventlog.Subject(eventlog.DefaultRoot, topic))
		if err != nil || string(m.Data) != fmt.Sprintf(`{"n":%d}`, i) {
			var got []byte
			if m != nil {
				got = m.Data
			}
			t.Fatalf("after write %d answered, the topic's last stored event is %s (%v); want n %d", i, got, err, i)
		}
	}
}
