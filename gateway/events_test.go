package gateway_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/internal/promtest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// eventsYAML routes orders to a service that publishes orders/{id} on
// every UPDATE_ORDER.
const eventsYAML = `
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
services:
  orders: {target: "${ADDR_orders}", key_env: SERVICE_KEY}
versions:
  v1:
    resources:
      orders: {service: orders, crud: [get, update]}
`

// publisher is a real socket service whose UPDATE_ORDER publishes its body
// on orders/{id}, visible to the body's "owner" and to admins.
type publisher struct {
	srv  *socket.Server
	keys *keyring.Keyring
	reg  *prometheus.Registry
	addr string
}

func startPublisher(t *testing.T) *publisher {
	t.Helper()
	p := &publisher{reg: prometheus.NewRegistry()}
	var err error
	p.keys, err = keyring.New(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true})
	must(t, err)
	p.srv, err = socket.NewServer(socket.Config{Name: "orders"}, socket.WithKeys(p.keys), socket.WithMetrics(p.reg), socket.WithDrainTimeout(2*time.Second))
	must(t, err)
	must(t, p.srv.Handle("GET_ORDER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
		return json.Marshal(map[string]string{"id": r.ResourceID})
	}), socket.Read()))
	must(t, p.srv.Handle("UPDATE_ORDER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
		var in struct {
			Owner string `json:"owner"`
		}
		_ = json.Unmarshal(r.Body, &in)
		vis := socket.Visibility{Subjects: []string{in.Owner}, Roles: []string{"admin"}}
		if in.Owner == "" {
			vis = socket.Visibility{Public: true}
		}
		return r.Body, p.srv.Publish("orders/"+r.ResourceID, r.Body, vis)
	})))
	p.addr = sockettest.Serve(t, p.srv)
	return p
}

func (p *publisher) delivered(t *testing.T) float64 {
	return promtest.Gather(t, p.reg).Value("streamgate_service_events_delivered_total", "service", "orders")
}

func startEventsGateway(t *testing.T, p *publisher, opts ...gateway.Option) (*gateway.Gateway, func(id, body string)) {
	t.Helper()
	cfg := parseConfig(t, strings.ReplaceAll(eventsYAML, "${ADDR_orders}", p.addr), nil)
	g, err := gateway.New(cfg, append([]gateway.Option{gateway.WithDialOptions(caller.WithBackoff(10*time.Millisecond, 100*time.Millisecond))}, opts...)...)
	must(t, err)
	ts := serveHTTP(t, g)
	update := func(id, body string) {
		t.Helper()
		if r := do(t, ts, "PUT", "/v1/orders/"+id, body, "X-API-Key", adminKey); r.Status != 200 {
			t.Fatalf("PUT /v1/orders/%s: %d %s", id, r.Status, r.Raw)
		}
	}
	return g, update
}

// watch starts a watcher whose events arrive on the returned channel.
func watch(t *testing.T, g *gateway.Gateway, topic string, p socket.Principal) (<-chan gateway.TopicEvent, func()) {
	t.Helper()
	ch := make(chan gateway.TopicEvent, 64)
	stop, err := gateway.WatchTopic(context.Background(), g, "v1", topic, p, func(e gateway.TopicEvent) { ch <- e })
	must(t, err)
	t.Cleanup(stop)
	return ch, stop
}

func nextEvent(t *testing.T, ch <-chan gateway.TopicEvent) gateway.TopicEvent {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no event")
		return gateway.TopicEvent{}
	}
}

func TestWatchTopicSharesOneUpstreamSubscription(t *testing.T) {
	t.Parallel()
	p := startPublisher(t)
	// No cache: its own subscription to every event would hide whether the
	// hub's subscription ends.
	g, update := startEventsGateway(t, p, gateway.WithCacheSize(0))
	alice := socket.Principal{Subject: "alice"}
	bob := socket.Principal{Subject: "bob"}
	admin := socket.Principal{Subject: "root", Roles: []string{"admin"}}
	aliceEvents, stopAlice := watch(t, g, "orders/1", alice)
	bobEvents, stopBob := watch(t, g, "orders/1", bob)
	adminEvents, stopAdmin := watch(t, g, "orders/1", admin)
	if n := gateway.Upstreams(g); n != 1 {
		t.Fatalf("upstream subscriptions = %d, want 1 shared by three watchers", n)
	}

	update("1", `{"owner":"alice","n":1}`) // alice and admins
	update("1", `{"n":2}`)                 // everyone
	for _, w := range []struct {
		name string
		ch   <-chan gateway.TopicEvent
		seqs []uint64
	}{{"alice", aliceEvents, []uint64{1, 2}}, {"admin", adminEvents, []uint64{1, 2}}, {"bob", bobEvents, []uint64{2}}} {
		for _, seq := range w.seqs {
			e := nextEvent(t, w.ch)
			if e.Topic != "orders/1" || e.Seq != seq {
				t.Fatalf("%s: event %+v, want orders/1 seq %d", w.name, e, seq)
			}
			var data struct{ N int }
			must(t, json.Unmarshal(e.Data, &data))
			if data.N != int(seq) {
				t.Fatalf("%s: data %s, want n %d", w.name, e.Data, seq)
			}
		}
	}
	if d := p.delivered(t); d != 2 {
		t.Fatalf("the service delivered %v event frames, want 2 (one per event for all watchers)", d)
	}

	stopAlice()
	stopBob()
	if n := gateway.Upstreams(g); n != 1 {
		t.Fatalf("upstream subscriptions with one watcher left = %d", n)
	}
	stopAdmin()
	if n := gateway.Upstreams(g); n != 0 {
		t.Fatalf("upstream subscriptions after the last watcher left = %d", n)
	}
	// The unsubscribe went out before this request on the same stream: the
	// service sends the event to no one.
	update("1", `{"n":3}`)
	if d := p.delivered(t); d != 2 {
		t.Fatalf("the service delivered %v event frames after the last watcher left, want still 2", d)
	}
	for _, ch := range []<-chan gateway.TopicEvent{aliceEvents, bobEvents, adminEvents} {
		select {
		case e := <-ch:
			t.Fatalf("a stopped watcher got %+v", e)
		default:
		}
	}
}

func TestWatchTopicRefusals(t *testing.T) {
	t.Parallel()
	p := startPublisher(t)
	g, _ := startEventsGateway(t, p)
	for _, tc := range []struct {
		version, topic string
		code           status.Code
	}{
		{"v1", "orders", socket.CodeInvalidArgument},
		{"v1", "orders/*", socket.CodeInvalidArgument},
		{"v1", "*", socket.CodeInvalidArgument},
		{"v1", "orders//1", socket.CodeUnavailable},
		{"v9", "orders/1", socket.CodeNotFound},
		{"v1", "users/1", socket.CodeNotFound},
	} {
		_, err := gateway.WatchTopic(context.Background(), g, tc.version, tc.topic, socket.Principal{Subject: "x"}, func(gateway.TopicEvent) {})
		if status.CodeOf(err) != tc.code {
			t.Errorf("%s %s: %v, want %s", tc.version, tc.topic, err, tc.code)
		}
	}
	if n := gateway.Upstreams(g); n != 0 {
		t.Fatalf("upstreams after refusals = %d", n)
	}
}

func TestWatchTopicSkipsASeqAfterAGap(t *testing.T) {
	t.Parallel()
	p := startPublisher(t)
	g, update := startEventsGateway(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan gateway.TopicEvent, 64)
	_, err := gateway.WatchTopic(ctx, g, "v1", "orders/1", socket.Principal{Subject: "alice"}, func(e gateway.TopicEvent) { ch <- e })
	must(t, err)
	update("1", `{"owner":"alice"}`)
	if e := nextEvent(t, ch); e.Seq != 1 {
		t.Fatalf("first event: %+v", e)
	}
	// Revoking the gateway's key breaks its stream: events until it is
	// back are lost, and the next one the watcher gets skips a seq.
	p.keys.Revoke("gateway")
	must(t, p.keys.Add(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true}))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	marked := false
	for {
		select {
		case e := <-ch:
			if e.Gap && e.Data == nil {
				marked = true // a gap marker: when the stream broke, and when it was renewed
				continue
			}
			if e.Seq < 3 || !marked { // one taken by each marker
				t.Fatalf("after the gap: %+v (after a gap marker: %v), want a seq past 2 after a marker", e, marked)
			}
			cancel() // ctx ends the watch
			for gateway.Upstreams(g) != 0 {
				select {
				case <-tick.C:
				case <-time.After(20 * time.Second):
					t.Fatal("the upstream outlived the watcher's context")
				}
			}
			return
		case <-tick.C:
			// Until the gateway's new stream is subscribed, events are lost.
			must(t, p.srv.Publish("orders/1", json.RawMessage(`{"owner":"alice"}`), socket.Visibility{Subjects: []string{"alice"}}))
		case <-time.After(20 * time.Second):
			t.Fatal("no event after the gap")
		}
	}
}

func TestWatchTopicSurvivesAReloadThatMovesTheService(t *testing.T) {
	t.Parallel()
	first, second := startPublisher(t), startPublisher(t)
	g, update := startEventsGateway(t, first)
	events, _ := watch(t, g, "orders/1", socket.Principal{Subject: "alice"})
	update("1", `{"owner":"alice","n":1}`)
	if e := nextEvent(t, events); e.Seq != 1 {
		t.Fatalf("before the reload: %+v", e)
	}
	// The service moves to another address: the watch follows it.
	must(t, g.Apply(parseConfig(t, strings.ReplaceAll(eventsYAML, "${ADDR_orders}", second.addr), nil)))
	if n := gateway.Upstreams(g); n != 1 {
		t.Fatalf("upstreams after the reload = %d", n)
	}
	// Events between the two subscriptions may be lost: a gap marker
	// tells the watcher, taking the next seq.
	if e := nextEvent(t, events); !e.Gap || e.Data != nil || e.Seq != 2 {
		t.Fatalf("after the reload: %+v, want a gap marker with seq 2", e)
	}
	update("1", `{"owner":"alice","n":2}`) // served by the second instance now
	e := nextEvent(t, events)
	var data struct{ N int }
	must(t, json.Unmarshal(e.Data, &data))
	if e.Seq != 3 || data.N != 2 || e.Gap {
		t.Fatalf("after the reload: %+v (%s), want seq 3 from the new instance", e, e.Data)
	}
	if d := second.delivered(t); d != 1 {
		t.Fatalf("the new instance delivered %v events, want 1", d)
	}
}

func TestConcurrentWatchersShareOneUpstream(t *testing.T) {
	t.Parallel()
	p := startPublisher(t)
	g, update := startEventsGateway(t, p, gateway.WithCacheSize(0))
	update("9", `{"n":0}`) // a ready stream: the first watcher waits for the service's acknowledgement
	const n = 50
	type watched struct {
		ch   chan gateway.TopicEvent
		stop func()
		err  error
	}
	results := make(chan watched, n)
	for range n {
		go func() {
			w := watched{ch: make(chan gateway.TopicEvent, 4)}
			w.stop, w.err = gateway.WatchTopic(context.Background(), g, "v1", "orders/9", socket.Principal{Subject: "x"}, func(e gateway.TopicEvent) { w.ch <- e })
			results <- w
		}()
	}
	var all []watched
	for range n {
		w := <-results
		must(t, w.err)
		all = append(all, w)
	}
	if u := gateway.Upstreams(g); u != 1 {
		t.Fatalf("upstreams = %d, want 1 for %d watchers", u, n)
	}
	update("9", `{"n":1}`)
	for _, w := range all {
		if e := nextEvent(t, w.ch); e.Seq != 1 {
			t.Fatalf("event %+v", e)
		}
		w.stop()
	}
	if u := gateway.Upstreams(g); u != 0 {
		t.Fatalf("upstreams after every watcher left = %d", u)
	}
}

// A watch whose context is already done ends at once, cleanly: stop runs
// on context.AfterFunc's goroutine while watchTopic is still returning.
func TestWatchTopicWithADoneContext(t *testing.T) {
	t.Parallel()
	p := startPublisher(t)
	g, _ := startEventsGateway(t, p, gateway.WithCacheSize(0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 50 {
		stop, err := gateway.WatchTopic(ctx, g, "v1", "orders/1", socket.Principal{Subject: "x"}, func(gateway.TopicEvent) {})
		must(t, err)
		stop()
	}
	if n := gateway.Upstreams(g); n != 0 {
		t.Fatalf("upstreams after watches with a done context = %d", n)
	}
}

// A topic's seq never restarts lower within the gateway's life: an
// upstream made again continues the count, skipping one (events between
// the two subscriptions are not seen).
func TestWatchTopicSeqNeverRestartsLower(t *testing.T) {
	t.Parallel()
	p := startPublisher(t)
	g, update := startEventsGateway(t, p, gateway.WithCacheSize(0))
	events, stop := watch(t, g, "orders/1", socket.Principal{Subject: "x"})
	update("1", `{"n":1}`)
	if e := nextEvent(t, events); e.Seq != 1 {
		t.Fatalf("first event %+v", e)
	}
	stop()
	if n := gateway.Upstreams(g); n != 0 {
		t.Fatalf("upstreams after the last watcher left = %d", n)
	}
	ch := make(chan gateway.TopicEvent, 4)
	stop, seq, err := gateway.WatchTopicSeq(context.Background(), g, "v1", "orders/1", socket.Principal{Subject: "x"}, func(e gateway.TopicEvent) { ch <- e })
	must(t, err)
	t.Cleanup(stop)
	if seq != 2 {
		t.Fatalf("the watch starts at seq %d, want 2 (1 and a skip)", seq)
	}
	update("1", `{"n":2}`)
	if e := nextEvent(t, ch); e.Seq != 3 {
		t.Fatalf("event after the upstream was made again: %+v, want seq 3", e)
	}
}
