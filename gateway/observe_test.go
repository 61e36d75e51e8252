package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/streamgate/streamgate/gateway"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	"github.com/streamgate/streamgate/internal/promtest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// recordSpans records the spans of the process until the test ends, when
// the global TracerProvider and propagator in force before are restored
// (so tracing is off again for the tests that expect it off). The test
// must not be parallel.
func recordSpans(t *testing.T) *tracetest.InMemoryExporter {
	e := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(e))
	oldTP, oldProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(oldTP)
		otel.SetTextMapPropagator(oldProp)
		_ = tp.Shutdown(context.Background())
	})
	return e
}

const observedYAML = `
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
    - {name: alice, secret_env: ALICE_KEY, subject: alice}
services:
  shop: {target: "${ADDR_shop}", key_env: SERVICE_KEY}
versions:
  v1:
    resources:
      items: {service: shop, crud: [get], cache_ttl: 1m}
`

// One read of one route comes in over each edge: a REST request, a
// WebSocket request frame, a GatewayService.Invoke and an Invoke through
// its REST binding. The four observers of the one observation hook
// (metrics, access log, traces, the route stats behind ListRoutes) each
// see every one of them, under the same route.
func TestObserversAgreeOnTheRoute(t *testing.T) {
	recorded := recordSpans(t)
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true, Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := socket.NewServer(socket.Config{Name: "shop"}, socket.WithKeys(keys))
	if err != nil {
		t.Fatal(err)
	}
	must(t, srv.Handle("GET_ITEM", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
		return json.Marshal(map[string]any{"id": r.ResourceID})
	}), socket.Read()))
	shop := &fakeService{Addr: sockettest.Serve(t, srv)}
	logs := newLogCapture()
	reg := gateway.NewRegistry()
	gw := runGateway(t, observedYAML, map[string]*fakeService{"shop": shop}, gateway.RunOptions{Logger: logs.Logger(), Metrics: reg})

	const template = "/v1/items/{id}"
	const route = "GET " + template

	// REST: GET /v1/items/1.
	req, _ := http.NewRequest("GET", "http://"+gw.addrs.HTTP+"/v1/items/1", nil)
	req.Header.Set("X-API-Key", aliceKey)
	req.Header.Set("X-Request-Id", "observed-rest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("REST: %d", resp.StatusCode)
	}

	// A WebSocket request frame: GET /items/2 on v1's socket.
	ws := dialSocket(t, "ws://"+gw.addrs.HTTP+"/v1/socket", "X-API-Key", aliceKey)
	if f := ws.request(`{"type":"request","id":"1","method":"GET","path":"/items/2"}`); f.Status != 200 {
		t.Fatalf("frame: %s", f.raw)
	}

	// GatewayService.Invoke: GET of item 3 in v1.
	cc, err := grpc.NewClient(gw.addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := gatewayv1.NewGatewayServiceClient(cc)
	ctx := metadata.AppendToOutgoingContext(testCtx(t), "x-api-key", aliceKey, "x-request-id", "observed-grpc")
	out, err := client.Invoke(ctx, &gatewayv1.InvokeRequest{Version: "v1", Resource: "items", Id: "3", Payload: &gatewayv1.InvokeRequest_BodyRaw{}})
	if err != nil || !out.GetOk() {
		t.Fatalf("Invoke: %v %v", out, err)
	}

	// GatewayService.Invoke through its REST binding: GET of item 4, a
	// call inside a REST request.
	breq, _ := http.NewRequest("POST", "http://"+gw.addrs.HTTP+"/gateway/v1/invoke", strings.NewReader(`{"version":"v1","resource":"items","id":"4"}`))
	breq.Header.Set("X-API-Key", aliceKey)
	breq.Header.Set("X-Request-Id", "observed-binding")
	bresp, err := http.DefaultClient.Do(breq)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, bresp.Body)
	bresp.Body.Close()
	if bresp.StatusCode != 200 {
		t.Fatalf("Invoke's REST binding: %d", bresp.StatusCode)
	}

	// The route stats: four reads of the route, each a miss.
	admin := metadata.AppendToOutgoingContext(testCtx(t), "authorization", "Bearer "+adminKey)
	routes, err := client.ListRoutes(admin, &gatewayv1.ListRoutesRequest{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	var stats *gatewayv1.RouteStats
	for _, r := range routes.GetRoutes() {
		if r.GetMethod()+" "+r.GetPath() == route {
			stats = r.GetStats()
		}
	}
	if stats.GetMisses() != 4 || stats.GetHits() != 0 {
		t.Errorf("route stats of %s: %v, want 4 misses", route, stats)
	}

	// The metrics: four cache misses under the route; the REST request
	// also under the route's requests, the binding's under gateway_service.
	s := promtest.Gather(t, reg)
	if got := s.Value("streamgate_gateway_cache_requests_total", "version", "v1", "route", template, "outcome", "miss"); got != 4 {
		t.Errorf("cache misses of %s = %v, want 4", template, got)
	}
	if got := s.Value("streamgate_gateway_requests_total", "route", "gateway_service", "method", "POST", "status", "200"); got != 1 {
		t.Errorf("requests of GatewayService's REST binding = %v, want 1", got)
	}
	if got := s.Value("streamgate_gateway_requests_total", "version", "v1", "route", template, "method", "GET", "status", "200"); got != 1 {
		t.Errorf("REST requests of %s = %v, want 1", template, got)
	}

	_ = ws.c.Close(websocket.StatusNormalClosure, "")
	gw.stop(t) // every access line is written
	// The access log: one line per edge, under the route; the traces: the
	// server span of each line's trace carries the same route.
	byProtocol := map[string]map[string]any{}
	var binding map[string]any
	for _, l := range accessLines(t, logs) {
		if l["method"] == "/streamgate.gateway.v1.GatewayService/ListRoutes" {
			continue
		}
		if l["request_id"] == "observed-binding" {
			binding = l
			continue
		}
		p, _ := l["protocol"].(string)
		if byProtocol[p] != nil {
			t.Errorf("two %s access lines: %v and %v", p, byProtocol[p], l)
		}
		byProtocol[p] = l
	}
	wantSpan := map[string]string{"http": route, "websocket": "socket request", "grpc": "streamgate.gateway.v1.GatewayService/Invoke"}
	for p, spanName := range wantSpan {
		l := byProtocol[p]
		if l == nil {
			t.Errorf("no %s access line in %s", p, logs.String())
			continue
		}
		if l["route"] != route || l["version"] != "v1" || l["principal"] != "alice" || l["cache"] != "miss" || l["status"] != 200.0 {
			t.Errorf("%s access line: %v, want route %q, v1, alice, miss, 200", p, l, route)
		}
		traceID, _ := l["trace_id"].(string)
		if span := serverSpan(t, recorded, traceID, spanName); span.Name != "" && spanRoute(span) != template {
			t.Errorf("%s span %q: http.route %q, want %q", p, span.Name, spanRoute(span), template)
		}
	}
	// The binding's line is its REST request's, with the call's route; its
	// Invoke span is a child of the REST span.
	if binding == nil || binding["protocol"] != "http" || binding["route"] != route || binding["principal"] != "alice" || binding["cache"] != "miss" {
		t.Errorf("the REST binding's access line: %v, want protocol http, route %q, alice, miss", binding, route)
	} else {
		traceID, _ := binding["trace_id"].(string)
		rest := serverSpan(t, recorded, traceID, "POST")
		invoke := serverSpan(t, recorded, traceID, "streamgate.gateway.v1.GatewayService/Invoke")
		if spanRoute(invoke) != template || invoke.Parent.SpanID() != rest.SpanContext.SpanID() {
			t.Errorf("the binding's Invoke span: route %q, parent %s; want %q under the REST span %s", spanRoute(invoke), invoke.Parent.SpanID(), template, rest.SpanContext.SpanID())
		}
	}
}

// serverSpan waits (bounded) for the server span of a trace.
func serverSpan(t *testing.T, e *tracetest.InMemoryExporter, traceID, name string) tracetest.SpanStub {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond) // spans have no signal: poll, bounded
	defer tick.Stop()
	for {
		for _, s := range e.GetSpans() {
			if s.SpanContext.TraceID().String() == traceID && s.Name == name {
				return s
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range e.GetSpans() {
				if s.SpanContext.TraceID().String() == traceID {
					names = append(names, s.Name)
				}
			}
			t.Errorf("no span %q in trace %q (its spans: %s)", name, traceID, strings.Join(names, ", "))
			return tracetest.SpanStub{}
		}
		<-tick.C
	}
}

// spanRoute is a span's http.route.
func spanRoute(s tracetest.SpanStub) string {
	for _, a := range s.Attributes {
		if a.Key == "http.route" {
			return a.Value.AsString()
		}
	}
	return ""
}
