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

// The health reports the events' NATS connection: ok with an events
// block, off without.
func TestEventsHealth(t *testing.T) {
	t.Parallel()
	shop := startEventsShop(t, eventsNATS(t), "")
	g, _ := shop.gateway(t)
	if h := gateway.Health(t.Context(), g); h.Events != "ok" {
		t.Errorf("health with events: %+v; want events ok", h)
	}
	direct, _ := startOrdersShop(t)
	if h := gateway.Health(t.Context(), direct); h.Events != "off" {
		t.Errorf("health without events: %+v; want events off", h)
	}
}
