package stack_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	"github.com/streamgate/streamgate/internal/tracing"
	"github.com/streamgate/streamgate/tools/internal/polyglottest"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

// spanLog is the in-memory exporter every span of this test binary goes
// to once a trace test ran, with a signal for each batch exported.
type spanLog struct {
	*tracetest.InMemoryExporter

	mu      sync.Mutex    // guards changed
	changed chan struct{} // closed (and replaced) when spans were exported
}

func (l *spanLog) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := l.InMemoryExporter.ExportSpans(ctx, spans)
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	return err
}

// traces installs, once per test binary, a global TracerProvider that
// records every span synchronously, and the W3C propagator, as
// `streamgate` does when OTEL_EXPORTER_OTLP_ENDPOINT is set. Tests tell
// their spans apart by trace id, so they may run beside others.
var traces = sync.OnceValue(func() *spanLog {
	l := &spanLog{InMemoryExporter: tracetest.NewInMemoryExporter(), changed: make(chan struct{})}
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(l)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return l
})

// waitTrace waits for a span that edge accepts (the edge's span, which
// ends after every span under it) and returns the spans of its trace,
// failing the test after a while.
func (l *spanLog) waitTrace(t *testing.T, edge func(tracetest.SpanStub) bool) spanTree {
	t.Helper()
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		all := l.GetSpans()
		for _, s := range all {
			if !edge(s) {
				continue
			}
			var tree spanTree
			for _, o := range all {
				if o.SpanContext.TraceID() == s.SpanContext.TraceID() {
					tree = append(tree, o)
				}
			}
			return tree
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no edge span within %v; spans:\n%s", startTimeout, spanTree(all))
		}
	}
}

// spanTree is the spans of one trace.
type spanTree []tracetest.SpanStub

func (tr spanTree) String() string {
	var b strings.Builder
	for _, s := range tr {
		fmt.Fprintf(&b, "  %s %q %s parent %s service %q\n", s.SpanKind, s.Name, s.SpanContext.SpanID(), s.Parent.SpanID(), attr(s, tracing.Service))
	}
	return b.String()
}

// one returns the only span with the name and kind (and, unless empty,
// the service), failing the test unless there is exactly one.
func (tr spanTree) one(t *testing.T, kind trace.SpanKind, name, service string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range tr {
		if s.SpanKind == kind && s.Name == name && (service == "" || attr(s, tracing.Service) == service) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s span %q (service %q), got %d in:\n%s", kind, name, service, len(found), tr)
	}
	return found[0]
}

// childOf fails the test unless child's parent is parent, in the same trace.
func childOf(t *testing.T, child, parent tracetest.SpanStub) {
	t.Helper()
	if child.Parent.SpanID() != parent.SpanContext.SpanID() || child.SpanContext.TraceID() != parent.SpanContext.TraceID() {
		t.Errorf("the parent of %s %q is %s, want %s %q (%s)", child.SpanKind, child.Name, child.Parent.SpanID(), parent.SpanKind, parent.Name, parent.SpanContext.SpanID())
	}
}

// call checks the hop the gateway makes for a step or a route: a client
// span for action under parent, and the service's server span under it.
func (tr spanTree) call(t *testing.T, parent tracetest.SpanStub, action, service string) (client, server tracetest.SpanStub) {
	t.Helper()
	server = tr.one(t, trace.SpanKindServer, action, service)
	for _, s := range tr {
		if s.SpanKind == trace.SpanKindClient && s.SpanContext.SpanID() == server.Parent.SpanID() {
			client = s
		}
	}
	if client.Name != action {
		t.Fatalf("the parent of %s's server span %q is not its client span:\n%s", service, action, tr)
	}
	childOf(t, client, parent)
	if got := attr(server, tracing.Code); got != tracing.CodeOK {
		t.Errorf("%s %s: code %q, want OK", service, action, got)
	}
	return client, server
}

// attr returns a span's attribute as text ("" when it has none).
func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

// newTraceParent returns a W3C traceparent header as a client would send
// it, and its trace and span ids.
func newTraceParent(t *testing.T) (string, trace.TraceID, trace.SpanID) {
	t.Helper()
	var tid trace.TraceID
	var sid trace.SpanID
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(sid[:])
	return fmt.Sprintf("00-%s-%s-01", tid, sid), tid, sid
}

// TestTracePurchase follows one v3 purchase: the trace the client started
// (traceparent) goes on at the gateway's REST span, whose pipeline steps
// are its children, each step's socket call a child of the step, and the
// orders, users, inventory and payments services' spans children of those
// calls.
func TestTracePurchase(t *testing.T) {
	polyglottest.GoOnly(t, "the services' spans are recorded in this process; the Node and Python services do not trace")
	spans := traces()
	s := startStack(t, stack.Options{})
	u := s.newUser(t, "trace-alice")
	item := s.newItem(t, 1500, 5)
	o := s.newOrder(t, u.ID, item.ID, 2, "")

	header, traceID, clientSpan := newTraceParent(t)
	s.pay(t, "v3", as(t, u.ID), o.ID, "A", cardOK, "traceparent", header).Want(t, http.StatusOK, "")

	const route = "POST /v3/orders/{id}/pay"
	tr := spans.waitTrace(t, func(s tracetest.SpanStub) bool { return s.SpanContext.TraceID() == traceID && s.Name == route })
	edge := tr.one(t, trace.SpanKindServer, route, "")
	if edge.Parent.SpanID() != clientSpan || !edge.Parent.IsRemote() {
		t.Errorf("the REST span's parent is %s (remote %v), want the client's span %s", edge.Parent.SpanID(), edge.Parent.IsRemote(), clientSpan)
	}
	steps := []struct{ step, service, action string }{
		{"order", "orders", "GET_ORDER"},
		{"purchasable", "users", "REQUIRE_PURCHASABLE"},
		{"voucher", "orders", "CHECK_VOUCHER"},
		{"available", "inventory", "REQUIRE_AVAILABLE"},
		{"payable", "payments", "CHECK_PAYMENT"},
		{"purchase", "orders", "BEGIN_PURCHASE"},
		{"stock", "inventory", "RESERVE_STOCK"},
		{"payment", "payments", "PAY"},
		{"paid", "orders", "MARK_PAID"},
	}
	for _, st := range steps {
		step := tr.one(t, trace.SpanKindInternal, "step "+st.step, "")
		childOf(t, step, edge)
		tr.call(t, step, st.action, st.service)
	}
	if len(tr) != 1+3*len(steps) {
		t.Errorf("want the REST span and 3 spans per step, got %d:\n%s", len(tr), tr)
	}
}

// TestTraceServiceToService starts a trace at the gateway (the client sent
// no traceparent) and follows it through orders into inventory: creating
// an order asks inventory for prices under the orders handler's span.
func TestTraceServiceToService(t *testing.T) {
	polyglottest.GoOnly(t, "the services' spans are recorded in this process; the Node and Python services do not trace")
	spans := traces()
	s := startStack(t, stack.Options{})
	u := s.newUser(t, "trace-bob")
	item := s.newItem(t, 700, 3)

	r := s.call(t, as(t, u.ID), "POST", "/v1/orders", map[string]any{"lines": []map[string]any{{"item_id": item.ID, "quantity": 1}}})
	r.Want(t, http.StatusCreated, "")
	requestID := r.Header.Get("X-Request-Id")

	const route = "POST /v1/orders"
	tr := spans.waitTrace(t, func(s tracetest.SpanStub) bool {
		return s.Name == route && attr(s, tracing.RequestID) == requestID
	})
	edge := tr.one(t, trace.SpanKindServer, route, "")
	if edge.Parent.IsValid() {
		t.Errorf("the REST span has a parent (%s) though the client sent no traceparent", edge.Parent.SpanID())
	}
	_, create := tr.call(t, edge, "CREATE_ORDER", "orders")
	tr.call(t, create, "GET_PRICES", "inventory")
}

// TestTraceInvoke continues the caller's trace through GatewayService.Invoke
// over gRPC: its server span is the child of the caller's span, and the
// service's span a grandchild through the socket call.
func TestTraceInvoke(t *testing.T) {
	polyglottest.GoOnly(t, "the services' spans are recorded in this process; the Node and Python services do not trace")
	spans := traces()
	s := startStack(t, stack.Options{})
	item := s.newItem(t, 900, 1)

	cc, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	header, traceID, clientSpan := newTraceParent(t)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", header)
	out, err := gatewayv1.NewGatewayServiceClient(cc).Invoke(ctx, &gatewayv1.InvokeRequest{Version: "v1", Resource: "items", Id: item.ID, Method: "GET"})
	if err != nil || !out.GetOk() {
		t.Fatalf("Invoke: %v %v", out, err)
	}

	const method = "streamgate.gateway.v1.GatewayService/Invoke"
	tr := spans.waitTrace(t, func(s tracetest.SpanStub) bool { return s.SpanContext.TraceID() == traceID && s.Name == method })
	edge := tr.one(t, trace.SpanKindServer, method, "")
	if edge.Parent.SpanID() != clientSpan {
		t.Errorf("Invoke's span's parent is %s, want the caller's span %s", edge.Parent.SpanID(), clientSpan)
	}
	tr.call(t, edge, "GET_ITEM", "inventory")
}
