package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
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

// meteredYAML routes one service, shop, through every path the metrics
// count: a cached read, an Idempotency-Key write, a compensated pipeline
// and a read the service sheds.
const meteredYAML = `
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
    - {name: alice, secret_env: ALICE_KEY, subject: alice}
services:
  shop: {target: "${ADDR_shop}", key_env: SERVICE_KEY, timeout: 5s}
versions:
  v1:
    resources:
      items:
        service: shop
        crud: [get]
        cache_ttl: 1m
        actions:
          - {name: hold, action: HOLD, idempotency: required}
          - {name: busy, method: GET, action: BUSY}
          - name: buy
            on: collection
            pipeline:
              - {as: charge, action: CHARGE, undo: {action: REFUND, id: "${charge.id}"}}
              - {as: finish, action: FINISH}
`

// meteredSystem is a gateway served by Run, with its admin listener, in
// front of a real shop service; both report to one registry.
type meteredSystem struct {
	rest, admin, shop string
	held              chan struct{} // HOLD started
	release           chan struct{} // HOLD may answer
}

// startMetered starts the system; logger, when given, receives the
// gateway's logs (at info, so every request has an access line).
func startMetered(t *testing.T, logger ...*slog.Logger) *meteredSystem {
	t.Helper()
	reg := gateway.NewRegistry()
	sys := &meteredSystem{held: make(chan struct{}, 1), release: make(chan struct{})}
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true, Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := socket.NewServer(socket.Config{Name: "shop"}, socket.WithKeys(keys), socket.WithMetrics(reg), socket.WithDrainTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	result := func(v any) socket.Handler {
		return socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) { return json.Marshal(v) })
	}
	must(t, srv.Handle("GET_ITEM", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
		return json.Marshal(map[string]any{"id": r.ResourceID})
	}), socket.Read()))
	must(t, srv.Handle("HOLD", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
		sys.held <- struct{}{}
		<-sys.release
		return json.RawMessage(`{"held":true}`), nil
	})))
	must(t, srv.Handle("BUSY", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
		return nil, socket.Errorf(socket.CodeResourceExhausted, "too busy")
	}), socket.Read()))
	must(t, srv.Handle("CHARGE", result(map[string]any{"id": "ch_1"})))
	must(t, srv.Handle("REFUND", result(map[string]any{"refunded": true})))
	must(t, srv.Handle("FINISH", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
		return nil, socket.Errorf(socket.CodeConflict, "the order changed")
	})))
	sys.shop = sockettest.Serve(t, srv)

	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(meteredYAML, "${ADDR_shop}", sys.shop)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan gateway.Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- gateway.Run(ctx, gateway.RunOptions{
			ConfigPath: path, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
			Env:     func(k string) string { return testEnv[k] },
			Metrics: reg,
			Logger:  firstOr(logger),
			Ready:   func(a gateway.Addrs) { addrs <- a },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case a := <-addrs:
		sys.rest, sys.admin = "http://"+a.HTTP, "http://"+a.Admin
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return sys
}

func (sys *meteredSystem) scrape(t *testing.T) promtest.Families {
	t.Helper()
	return promtest.Scrape(t, sys.admin+"/metrics")
}

// call sends a REST request to the running gateway.
func (sys *meteredSystem) call(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	return do(t, &httptest.Server{URL: sys.rest}, method, path, body, headers...)
}

// walkThrough sends one request down every counted path and checks the
// counters after each.
func walkThrough(t *testing.T, sys *meteredSystem) {
	alice := bearer(aliceKey)
	const item = "/v1/items/{id}"
	want := func(s promtest.Families, n float64, name string, labels ...string) {
		t.Helper()
		if got := s.Value(name, labels...); got != n {
			t.Errorf("%s%v = %v, want %v", name, labels, got, n)
		}
	}

	// A cached read: a miss, then a hit; one handler run in the service.
	for i, outcome := range []string{"miss", "hit"} {
		if r := sys.call(t, "GET", "/v1/items/1", "", alice...); r.Status != 200 || r.Header.Get("X-Cache") != outcome {
			t.Fatalf("read %d: %d X-Cache %q, want 200 %s: %s", i, r.Status, r.Header.Get("X-Cache"), outcome, r.Raw)
		}
	}
	s := sys.scrape(t)
	want(s, 1, "streamgate_gateway_cache_requests_total", "version", "v1", "route", item, "outcome", "miss")
	want(s, 1, "streamgate_gateway_cache_requests_total", "version", "v1", "route", item, "outcome", "hit")
	want(s, 2, "streamgate_gateway_requests_total", "version", "v1", "route", item, "method", "GET", "status", "200")
	want(s, 2, "streamgate_gateway_request_duration_seconds", "version", "v1", "route", item, "method", "GET")
	want(s, 1, "streamgate_service_frames_total", "service", "shop", "action", "GET_ITEM", "code", "OK")
	want(s, 1, "streamgate_service_handler_duration_seconds", "service", "shop", "action", "GET_ITEM")
	want(s, 1, "streamgate_service_open_streams", "service", "shop")

	// Refusals count under their route; paths of no route under unmatched,
	// never under the raw path.
	if r := sys.call(t, "GET", "/v1/items/2", ""); r.Status != 401 {
		t.Fatalf("without a key: %d %s", r.Status, r.Raw)
	}
	if r := sys.call(t, "GET", "/v1/nothing/secret-id", "", alice...); r.Status != 404 {
		t.Fatalf("unknown resource: %d %s", r.Status, r.Raw)
	}
	if r := sys.call(t, "GET", "/gateway/v1/versions/v1/routes", "", bearer(adminKey)...); r.Status != 200 {
		t.Fatalf("ListRoutes: %d %s", r.Status, r.Raw)
	}
	s = sys.scrape(t)
	want(s, 1, "streamgate_gateway_requests_total", "version", "v1", "route", item, "status", "401")
	want(s, 1, "streamgate_gateway_requests_total", "version", "", "route", "unmatched", "method", "GET", "status", "404")
	want(s, 1, "streamgate_gateway_requests_total", "route", "gateway_service", "status", "200")
	// A /gateway/ path GatewayService does not take is a REST path.
	if r := sys.call(t, "GET", "/gateway/v1/invoke", "", alice...); r.Status != 404 {
		t.Fatalf("GET /gateway/v1/invoke: %d %s", r.Status, r.Raw)
	}
	want(sys.scrape(t), 2, "streamgate_gateway_requests_total", "version", "", "route", "unmatched", "method", "GET", "status", "404")
	for _, m := range s["streamgate_gateway_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), "secret-id") || strings.Contains(l.GetValue(), "/items/1") {
				t.Errorf("a label carries the raw path: %v", m.GetLabel())
			}
		}
	}

	// Idempotency-Key: one request runs, a concurrent one is refused
	// (409), a retry is replayed, another body with the key is refused
	// (422).
	key := []string{"Idempotency-Key", "hold-1"}
	first := make(chan response, 1)
	go func() { first <- sys.call(t, "POST", "/v1/items/3/hold", `{"n":1}`, append(alice, key...)...) }()
	<-sys.held
	s = sys.scrape(t)
	want(s, 1, "streamgate_gateway_requests_in_flight")
	want(s, 1, "streamgate_service_requests_in_flight", "service", "shop")
	if r := sys.call(t, "POST", "/v1/items/3/hold", `{"n":1}`, append(alice, key...)...); r.Status != 409 {
		t.Fatalf("concurrent retry: %d %s", r.Status, r.Raw)
	}
	close(sys.release)
	if r := <-first; r.Status != 200 {
		t.Fatalf("hold: %d %s", r.Status, r.Raw)
	}
	if r := sys.call(t, "POST", "/v1/items/3/hold", `{"n":1}`, append(alice, key...)...); r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry not replayed: %d %s", r.Status, r.Raw)
	}
	if r := sys.call(t, "POST", "/v1/items/3/hold", `{"n":2}`, append(alice, key...)...); r.Status != 422 {
		t.Fatalf("key reused: %d %s", r.Status, r.Raw)
	}
	s = sys.scrape(t)
	const hold = "/v1/items/{id}/hold"
	want(s, 1, "streamgate_gateway_idempotency_conflicts_total", "route", hold, "reason", "idempotency_key_in_use")
	want(s, 1, "streamgate_gateway_idempotency_conflicts_total", "route", hold, "reason", "idempotency_key_reused")
	want(s, 1, "streamgate_gateway_idempotency_replays_total", "version", "v1", "route", hold)
	want(s, 0, "streamgate_gateway_requests_in_flight")
	want(s, 1, "streamgate_service_frames_total", "service", "shop", "action", "HOLD", "code", "OK")

	// A pipeline whose last step fails: its first step is undone.
	if r := sys.call(t, "POST", "/v1/items/buy", "", alice...); r.Status != 409 {
		t.Fatalf("buy: %d %s", r.Status, r.Raw)
	}
	// A read the service sheds.
	if r := sys.call(t, "GET", "/v1/items/4/busy", "", alice...); r.Status != 429 {
		t.Fatalf("busy: %d %s", r.Status, r.Raw)
	}
	s = sys.scrape(t)
	const buy = "/v1/items/buy"
	want(s, 1, "streamgate_gateway_pipeline_steps_total", "route", buy, "step", "charge", "code", "OK")
	want(s, 1, "streamgate_gateway_pipeline_steps_total", "route", buy, "step", "finish", "code", "CONFLICT")
	want(s, 1, "streamgate_gateway_pipeline_compensations_total", "route", buy, "step", "charge", "result", "ok")
	want(s, 1, "streamgate_gateway_shed_total", "route", "/v1/items/{id}/busy", "code", "RESOURCE_EXHAUSTED", "reason", "")
	want(s, 1, "streamgate_service_frames_total", "service", "shop", "action", "REFUND", "code", "OK")
	want(s, 1, "streamgate_service_frames_total", "service", "shop", "action", "BUSY", "code", "RESOURCE_EXHAUSTED")

	// A caller with a key the service does not know is refused.
	c, err := caller.Dial(sys.shop, caller.WithKey("not-the-key"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Request(testCtx(t), "GET_ITEM", "1", nil)
	_ = c.Close()
	if status.CodeOf(err) != socket.CodeUnauthenticated {
		t.Fatalf("bad key: %v", err)
	}
	if got := sys.scrape(t).Value("streamgate_service_auth_refusals_total", "service", "shop"); got < 1 {
		t.Errorf("auth refusals = %v, want at least 1", got)
	}
}

// firstOr returns the first logger given, nil without one.
func firstOr(l []*slog.Logger) *slog.Logger {
	if len(l) == 0 {
		return nil
	}
	return l[0]
}

// TestMetricsWalkThroughWithAccessLog is the walk-through with the access
// log on: the access log's writer wraps the metrics' one, and requests
// must still count under their routes (they all counted as "unmatched").
func TestMetricsWalkThroughWithAccessLog(t *testing.T) {
	t.Parallel()
	sys := startMetered(t, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	walkThrough(t, sys)
}

func TestMetricsWalkThrough(t *testing.T) {
	t.Parallel()
	sys := startMetered(t)
	walkThrough(t, sys)
	if !sys.scrape(t).Has("go_goroutines") {
		t.Error("/metrics has no Go runtime metrics")
	}
}

// TestDashboardReadsExportedMetrics checks that every metric the Grafana
// dashboard queries is in a scrape of a running gateway and service.
func TestDashboardReadsExportedMetrics(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../deploy/grafana/streamgate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	type query struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		Title   string  `json:"title"`
		Targets []query `json:"targets"`
	}
	var dash struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	sys := startMetered(t)
	walkThrough(t, sys)
	s := sys.scrape(t)
	name := regexp.MustCompile(`\b(streamgate|go|process)_[a-z0-9_]+\b`)
	exprs := 0
	for _, v := range dash.Templating.List { // variables query too
		if v.Definition != "" {
			dash.Panels = append(dash.Panels, panel{Title: "variable " + v.Name, Targets: []query{{Expr: v.Definition}}})
		}
	}
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			exprs++
			names := name.FindAllString(target.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: expr %q reads no streamgate metric", p.Title, target.Expr)
			}
			for _, n := range names {
				base := n
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(n, suffix); ok && s[b] != nil {
						base = b
					}
				}
				if !s.Has(base) {
					t.Errorf("panel %q reads %s, which /metrics does not export", p.Title, n)
				}
			}
		}
	}
	if exprs < 10 {
		t.Fatalf("the dashboard has %d queries; want one per metric family at least", exprs)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestMetricsShared checks that two gateways on one registry share their
// series.
func TestMetricsShared(t *testing.T) {
	t.Parallel()
	svc := startService(t, "users", map[string]handlerFunc{
		"GET_USER": func(_ context.Context, r *socket.Request) (any, error) {
			return map[string]any{"id": r.ResourceID}, nil
		},
	}, "GET_USER")
	reg := prometheus.NewRegistry()
	cfg := parseConfig(t, benchYAML, map[string]*fakeService{"users": svc})
	for range 2 {
		g, err := gateway.New(cfg, gateway.WithMetrics(reg))
		if err != nil {
			t.Fatal(err)
		}
		ts := serveHTTP(t, g)
		if r := do(t, ts, "GET", "/v1/users/1", "", "X-API-Key", aliceKey); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
	}
	if got := promtest.Gather(t, reg).Value("streamgate_gateway_requests_total", "route", "/v1/users/{id}", "status", "200"); got != 2 {
		t.Fatalf("requests of two gateways on one registry = %v, want 2", got)
	}
}
