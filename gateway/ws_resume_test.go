package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/natsserve"
)

// jetstreamYAML routes orders to a service on NATS whose events the gateway
// reads from JetStream (events:), under a root of the test's own.
const jetstreamYAML = `
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
    - {name: alice, secret_env: ALICE_KEY, subject: alice}
    - {name: bob, secret_env: BOB_KEY, subject: bob}
services:
  orders: {transport: nats, target: "${NAME}", nats_url: "${NATS}", key_env: SERVICE_KEY}
versions:
  v1:
    resources:
      orders: {service: orders, crud: [get]}
events:
  nats_url: "${NATS}"
  root: ${ROOT}
${WINDOWS}`

const bobKey = "bob-key"

// eventsNATS is the CI's NATS server when STREAMGATE_TEST_NATS is set,
// else an embedded one with JetStream.
func eventsNATS(t *testing.T) string {
	t.Helper()
	if os.Getenv("STREAMGATE_TEST_NATS") != "" {
		return natstest.External(t)
	}
	return natstest.EmbeddedJetStream(t)
}

// eventsShop is an orders service on NATS storing its events in
// JetStream, and the gateways in front of it reading them.
type eventsShop struct {
	url, root string
	srv       *socket.Server
	yaml      string
}

// startEventsShop serves the orders service over NATS at url (every order
// exists; GET_ORDER answers anyone) with its events stored under a root
// of the test's own; windows is the events block's windows (YAML, may be
// empty for the default).
func startEventsShop(t *testing.T, url, windows string) *eventsShop {
	t.Helper()
	name, root := natstest.UniqueName("orders"), "test."+strings.ReplaceAll(natstest.UniqueName("ev"), "-", "_")
	var srv *socket.Server
	srv, _ = newService(t, name, map[string]handlerFunc{
		"GET_ORDER": func(_ context.Context, r *socket.Request) (any, error) {
			return map[string]any{"id": r.ResourceID}, nil
		},
		// The update is the order's event, seen by everyone.
		"UPDATE_ORDER": func(_ context.Context, r *socket.Request) (any, error) {
			return r.Body, srv.Publish("orders/"+r.ResourceID, r.Body, socket.Visibility{Public: true})
		},
	}, "GET_ORDER")
	nc := natstest.Connect(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, natsserve.Listen(nc, nil, natsserve.WithEvents(root))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	natstest.WaitService(t, nc, name, 1, 2)
	t.Cleanup(func() { deleteStreams(t, nc, root) }) // a shared server keeps them otherwise
	yaml := strings.NewReplacer("${NATS}", url, "${NAME}", name, "${ROOT}", root, "${WINDOWS}", windows).Replace(jetstreamYAML)
	return &eventsShop{url: url, root: root, srv: srv, yaml: yaml}
}

// gateway starts one more gateway in front of the shop (no cache unless
// opts say otherwise).
func (s *eventsShop) gateway(t *testing.T, opts ...gateway.Option) (*gateway.Gateway, *httptest.Server) {
	t.Helper()
	cfg := parseConfigEnv(t, s.yaml, eventsEnv())
	g, err := gateway.New(cfg, append([]gateway.Option{gateway.WithCacheSize(0)}, opts...)...)
	must(t, err)
	return g, serveHTTP(t, g)
}

// publish has the service publish orders/{id} events {"n":i} for i in
// [from, to), visible to vis, every interval (0: at once).
func (s *eventsShop) publish(t *testing.T, id string, from, to int, vis socket.Visibility, interval time.Duration) {
	t.Helper()
	var tick *time.Ticker
	if interval > 0 {
		tick = time.NewTicker(interval)
		defer tick.Stop()
	}
	for i := from; i < to; i++ {
		if tick != nil {
			<-tick.C
		}
		if err := s.srv.Publish("orders/"+id, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), vis); err != nil {
			t.Errorf("Publish %d: %v", i, err)
			return
		}
	}
}

// subscribedShop starts a shop (windows as startEventsShop takes them)
// with one gateway, and an admin's socket subscribed to topic.
func subscribedShop(t *testing.T, windows, topic string) (*eventsShop, *httptest.Server, *wsClient, subscribeAnswer) {
	t.Helper()
	shop := startEventsShop(t, eventsNATS(t), windows)
	_, ts := shop.gateway(t)
	c := shopSocket(t, ts, bearer(adminKey)...)
	return shop, ts, c, c.subscribe(topic, "")
}

// subscribeAnswer is a subscribe's result.
type subscribeAnswer struct {
	Seq       uint64 `json:"seq"`
	Epoch     string `json:"epoch"`
	Recovered bool   `json:"recovered"`
}

// subscribe sends a subscribe frame (extra: more fields, e.g. since) and
// decodes its answer.
func (w *wsClient) subscribe(topic, extra string) subscribeAnswer {
	w.t.Helper()
	f := w.request(`{"type":"subscribe","id":"s","topic":"` + topic + `"` + extra + `}`)
	var a subscribeAnswer
	if f.Status != 200 || json.Unmarshal(f.Result, &a) != nil {
		w.t.Fatalf("subscribe: %s", f.raw)
	}
	return a
}

// eventFrame is an event frame with its epoch.
type eventFrame struct {
	Type  string          `json:"type"`
	Seq   uint64          `json:"seq"`
	Epoch string          `json:"epoch"`
	Data  json.RawMessage `json:"data"`
}

// eventReader checks that a topic's events come each once, in order: n
// one more than the last, seq higher, epoch the same.
type eventReader struct {
	t       *testing.T
	lastN   int
	lastSeq uint64
	epoch   string
}

// readUntil reads events from c until the one with n == until (bounded),
// or until the socket fails (false: a disconnect the test asked for).
func (r *eventReader) readUntil(c *wsClient, until int) {
	r.t.Helper()
	for r.lastN < until {
		_, b, err := readRaw(c, 20*time.Second)
		if err != nil {
			r.t.Fatalf("after event n=%d seq=%d: %v", r.lastN, r.lastSeq, err)
		}
		r.check(b)
	}
}

// check checks one frame.
func (r *eventReader) check(b []byte) {
	r.t.Helper()
	var f eventFrame
	var d struct{ N int }
	if json.Unmarshal(b, &f) != nil || f.Type != "event" || json.Unmarshal(f.Data, &d) != nil {
		r.t.Fatalf("after n=%d: %s; want the next event", r.lastN, b)
	}
	if d.N != r.lastN+1 || f.Seq <= r.lastSeq || f.Epoch == "" || f.Epoch != r.epoch {
		r.t.Fatalf("after n=%d seq=%d epoch %s: %s; want n=%d, a higher seq, the same epoch", r.lastN, r.lastSeq, r.epoch, b, r.lastN+1)
	}
	r.lastN, r.lastSeq = d.N, f.Seq
}

// readRaw reads one frame's bytes.
func readRaw(c *wsClient, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, b, err := c.c.Read(ctx)
	return int(typ), b, err
}

// A client of a topic receiving 500 events/s goes away for 5 s twice and
// resumes with since and epoch, once on the same gateway and once on
// another: it gets every event exactly once, in seq order, with no gap.
func TestSocketResumesFromJetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("two 5 s disconnects")
	}
	shop := startEventsShop(t, eventsNATS(t), "")
	_, ts1 := shop.gateway(t)
	_, ts2 := shop.gateway(t)

	c := shopSocket(t, ts1, bearer(adminKey)...)
	first := c.subscribe("orders/o1", "")
	if first.Recovered || first.Epoch == "" {
		t.Fatalf("a first subscribe: %+v; want an epoch, not recovered", first)
	}
	r := &eventReader{t: t, lastN: -1, lastSeq: first.Seq, epoch: first.Epoch}

	const rate, total = 500, 500 * 13 // 13 s of events: 1 s, away 5 s, 1 s, away 5 s, the rest
	published := make(chan struct{})
	go func() {
		defer close(published)
		shop.publish(t, "o1", 0, total, socket.Visibility{Public: true}, time.Second/rate)
	}()
	resume := func(ts *httptest.Server) {
		t.Helper()
		c := shopSocket(t, ts, bearer(adminKey)...)
		a := c.subscribe("orders/o1", fmt.Sprintf(`,"since":%d,"epoch":%q`, r.lastSeq, r.epoch))
		if !a.Recovered || a.Seq != r.lastSeq || a.Epoch != r.epoch {
			t.Fatalf("resume after seq %d: %+v; want recovered from it", r.lastSeq, a)
		}
		r.readUntil(c, r.lastN+rate) // the missed events, then a second of live ones
		_ = c.c.CloseNow()
	}
	r.readUntil(c, rate-1)
	_ = c.c.CloseNow()
	away := time.NewTimer(5 * time.Second) // a real absence, not synchronisation
	<-away.C
	resume(ts1)
	away.Reset(5 * time.Second)
	<-away.C

	c = shopSocket(t, ts2, bearer(adminKey)...)
	a := c.subscribe("orders/o1", fmt.Sprintf(`,"since":%d,"epoch":%q`, r.lastSeq, r.epoch))
	if !a.Recovered || a.Seq != r.lastSeq || a.Epoch != r.epoch {
		t.Fatalf("resume on another gateway after seq %d: %+v; want recovered from it", r.lastSeq, a)
	}
	r.readUntil(c, total-1)
	<-published
}

// Past the window (a tiny one) or in another epoch, a resume is answered
// recovered: false at once, with the current seq.
func TestSocketResumePastTheWindow(t *testing.T) {
	t.Parallel()
	shop, ts, c, first := subscribedShop(t, "  windows:\n    - {prefix: orders, max_bytes: 2048}\n", "orders/o2")
	_ = c.c.CloseNow()
	// 100 events of about 100 bytes: the window keeps the last 20 or so.
	shop.publish(t, "o2", 0, 100, socket.Visibility{Public: true}, 0)
	now := waitSeq(t, ts, "orders/o2", first.Seq+100)

	fresh := shopSocket(t, ts, bearer(adminKey)...)
	a := fresh.subscribe("orders/o2", fmt.Sprintf(`,"since":%d,"epoch":%q`, first.Seq, first.Epoch))
	if a.Recovered || a.Seq != now || a.Epoch != first.Epoch {
		t.Errorf("resume from an event the window dropped: %+v; want recovered false at seq %d", a, now)
	}
	other := shopSocket(t, ts, bearer(adminKey)...)
	a = other.subscribe("orders/o2", fmt.Sprintf(`,"since":%d,"epoch":"another"`, now))
	if a.Recovered || a.Seq != now {
		t.Errorf("resume in another epoch: %+v; want recovered false at seq %d", a, now)
	}
	// The live events follow the answer's seq.
	shop.publish(t, "o2", 100, 101, socket.Visibility{Public: true}, 0)
	r := &eventReader{t: t, lastN: 99, lastSeq: a.Seq, epoch: first.Epoch}
	r.readUntil(other, 100)
}

// waitSeq waits (bounded) until a subscribe to topic answers seq at
// least want (the service stores its events in the background), and
// returns it.
func waitSeq(t *testing.T, ts *httptest.Server, topic string, want uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c := shopSocket(t, ts, bearer(adminKey)...)
		a := c.subscribe(topic, "")
		_ = c.c.CloseNow()
		if a.Seq >= want {
			return a.Seq
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s at seq %d after 10s; want %d", topic, a.Seq, want)
		}
		<-tick.C
	}
}

// An event another principal may not see is not delivered to them; the
// one who may sees it.
func TestSocketEventsFromJetStreamFilteredByVisibility(t *testing.T) {
	t.Parallel()
	shop := startEventsShop(t, eventsNATS(t), "")
	_, ts := shop.gateway(t)
	alice := shopSocket(t, ts, bearer(aliceKey)...)
	bob := shopSocket(t, ts, "X-API-Key", bobKey)
	aliceStart := alice.subscribe("orders/o3", "")
	bobStart := bob.subscribe("orders/o3", "")
	shop.publish(t, "o3", 0, 1, socket.Visibility{Subjects: []string{"alice"}}, 0)
	shop.publish(t, "o3", 1, 2, socket.Visibility{Public: true}, 0)

	ra := &eventReader{t: t, lastN: -1, lastSeq: aliceStart.Seq, epoch: aliceStart.Epoch}
	ra.readUntil(alice, 1)
	_, b, err := readRaw(bob, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var f eventFrame
	if json.Unmarshal(b, &f) != nil || string(f.Data) != `{"n":1}` || f.Seq <= bobStart.Seq {
		t.Errorf("bob's first frame: %s; want the public event n=1 only", b)
	}
}

// Subscribing and unsubscribing 10,000 times leaves no JetStream consumer,
// no upstream and no goroutine behind.
func TestEventsWatchCyclesLeaveNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 cycles")
	}
	shop := startEventsShop(t, eventsNATS(t), "")
	g, _ := shop.gateway(t)
	admin := socket.Principal{Subject: "admin", Roles: []string{"admin"}}
	ctx := context.Background()

	// The test's own connection, and a warm-up watch: their goroutines are
	// counted before. A NATS subscription left behind would leave its
	// goroutine (the NATS client runs one per asynchronous subscription).
	nc := natstest.Connect(t, shop.url)
	js, err := jetstream.New(nc)
	must(t, err)
	stream := strings.ToUpper(strings.ReplaceAll(shop.root, ".", "_")) + "_orders"
	if _, err := js.Stream(ctx, stream); err != nil {
		t.Fatal(err)
	}
	stop, err := gateway.WatchTopic(ctx, g, "v1", "orders/warm", admin, func(gateway.TopicEvent) {})
	must(t, err)
	stop()
	before := goroutines()

	const cycles, workers = 10_000, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range cycles / workers {
				stop, err := gateway.WatchTopic(ctx, g, "v1", fmt.Sprintf("orders/c%d-%d", w, i%4), admin, func(gateway.TopicEvent) {})
				if err != nil {
					errs <- err
					return
				}
				stop()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := gateway.Upstreams(g); n != 0 {
		t.Errorf("%d topics still read after the cycles", n)
	}
	st, err := js.Stream(ctx, stream)
	must(t, err)
	if n := st.CachedInfo().State.Consumers; n != 0 {
		t.Errorf("%d JetStream consumers left after the cycles", n)
	}
	waitGoroutines(t, before)
}

// eventsEnv is the test environment with bob's key too.
func eventsEnv() map[string]string {
	env := map[string]string{"BOB_KEY": bobKey}
	for k, v := range testEnv {
		env[k] = v
	}
	return env
}

// parseConfigEnv parses YAML with env as the environment.
func parseConfigEnv(t *testing.T, yaml string, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// goroutines is how many goroutines run now.
func goroutines() int { return runtime.NumGoroutine() }

// waitGoroutines waits (bounded) until at most before goroutines run.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for goroutines() > before {
		if time.Now().After(deadline) {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines after the cycles, %d before:\n%s", goroutines(), before, b.String())
		}
		<-tick.C
	}
}

// With events:, an event a service stored drops the cached reads of its
// object, under a root of the test's own (which the service clients' own
// subscriptions, on the default root, do not see).
func TestEventsFromJetStreamInvalidateTheCache(t *testing.T) {
	t.Parallel()
	shop := startEventsShop(t, eventsNATS(t), "")
	shop.yaml = strings.Replace(shop.yaml, "crud: [get]}", "crud: [get], cache_ttl: 1m}", 1)
	invalidated := make(chan []string, 16)
	_, ts := shop.gateway(t, gateway.WithCacheSize(1<<20), gateway.WithEventInvalidated(func(tags []string) { invalidated <- tags }))
	get := func(want string) {
		t.Helper()
		if r := do(t, ts, "GET", "/v1/orders/o4", "", bearer(adminKey)...); r.Status != 200 || r.Header.Get("X-Cache") != want {
			t.Fatalf("GET: %d %s X-Cache %q; want %q", r.Status, r.Raw, r.Header.Get("X-Cache"), want)
		}
	}
	get("miss")
	get("hit")
	shop.publish(t, "o4", 0, 1, socket.Visibility{Public: true}, 0)
	select {
	case tags := <-invalidated:
		if !slices.Contains(tags, "orders|orders|o4") {
			t.Fatalf("invalidated %v; want the order's tag", tags)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stored event never invalidated the cache")
	}
	get("miss")
}

// Without events:, a subscribe with since is answered recovered: false
// (the gateway's seqs are its own), with no epoch.
func TestSocketSinceWithoutEventsNotRecovered(t *testing.T) {
	t.Parallel()
	_, ts := startOrdersShop(t)
	c := shopSocket(t, ts, bearer(aliceKey)...)
	f := c.request(`{"type":"subscribe","id":"s","topic":"orders/o1","since":7,"epoch":"e"}`)
	var a map[string]any
	if f.Status != 200 || json.Unmarshal(f.Result, &a) != nil || a["recovered"] != false || a["epoch"] != nil || a["subscribed"] != true {
		t.Fatalf("subscribe with since: %s; want subscribed, recovered false, no epoch", f.raw)
	}
	if f := c.request(`{"type":"subscribe","id":"t","topic":"orders/o2","since":-1}`); f.Status != 400 || !strings.Contains(f.raw, "since must be a non-negative integer") {
		t.Errorf("since -1: %s; want 400", f.raw)
	}
}

// A plaintext events URL off loopback is refused at start, without its
// password in the message.
func TestPlaintextEventsNATSRefused(t *testing.T) {
	cfg := parseConfigEnv(t, "events:\n  nats_url: nats://gw:hunter2@nats.example:4222\n", testEnv)
	_, err := gateway.New(cfg)
	if err == nil || !strings.Contains(err.Error(), "in plaintext at nats://gw:xxxxx@nats.example:4222 (not loopback)") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v; want the plaintext events link refused, without the password", err)
	}
}

// deleteStreams deletes the event streams the gateways made under root.
func deleteStreams(t *testing.T, nc *nats.Conn, root string) {
	js, err := jetstream.New(nc)
	if err != nil {
		t.Error(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prefix := strings.ToUpper(strings.ReplaceAll(root, ".", "_")) + "_"
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix) {
			if err := js.DeleteStream(ctx, name); err != nil {
				t.Errorf("delete stream %s: %v", name, err)
			}
		}
	}
	if err := names.Err(); err != nil {
		t.Error(err)
	}
}

// A topic's stream deleted while watched is made again by the gateway:
// the watcher gets a gap marker with the new epoch, then the events of
// the new stream.
func TestSocketWatchGoesOnInANewEpoch(t *testing.T) {
	t.Parallel()
	shop, _, c, first := subscribedShop(t, "", "orders/o6")

	nc := natstest.Connect(t, shop.url)
	js, err := jetstream.New(nc)
	must(t, err)
	ctx := testCtx(t)
	must(t, js.DeleteStream(ctx, strings.ToUpper(strings.ReplaceAll(shop.root, ".", "_"))+"_orders"))

	_, b, err := readRaw(c, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var gap eventFrame
	if json.Unmarshal(b, &gap) != nil || gap.Type != "gap" || gap.Epoch == "" || gap.Epoch == first.Epoch {
		t.Fatalf("after the stream's deletion: %s; want a gap marker with a new epoch", b)
	}
	shop.publish(t, "o6", 0, 1, socket.Visibility{Public: true}, 0)
	r := &eventReader{t: t, lastN: -1, lastSeq: gap.Seq, epoch: gap.Epoch}
	r.readUntil(c, 0)
}

// The events block takes effect at start: a configuration that changes it
// is refused, one that keeps it is applied.
func TestEventsBlockChangesOnlyWithARestart(t *testing.T) {
	t.Parallel()
	shop := startEventsShop(t, eventsNATS(t), "")
	g, _ := shop.gateway(t)
	env := eventsEnv()
	if err := g.Apply(parseConfigEnv(t, shop.yaml, env)); err != nil {
		t.Errorf("the same events block: %v", err)
	}
	changed := strings.Replace(shop.yaml, "  root:", "  windows: [{prefix: orders, max_age: 1m}]\n  root:", 1)
	if err := g.Apply(parseConfigEnv(t, changed, env)); err == nil || !strings.Contains(err.Error(), "the events block changes only with a restart") {
		t.Errorf("a changed events block: %v; want it refused", err)
	}
}
