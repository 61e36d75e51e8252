package socket_test

import (
	"context"
	"testing"

	"github.com/streamgate/streamgate/internal/tracing"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// traceSeen is what the downstream test action saw of the trace context.
type traceSeen struct {
	TraceParent string `json:"traceparent"`
	TraceState  string `json:"tracestate"`
}

// With no TracerProvider set up (as in this test binary), the runtime starts
// no span, and the trace context a caller sends reaches the handler and is
// passed on, unchanged, by the handler's own calls to another service.
// (tools/streamgate/internal/stack's trace tests cover tracing on.)
func TestTraceContextPassesOnWithoutTracing(t *testing.T) {
	if tracing.Enabled() {
		t.Fatal("a test of this package set a global TracerProvider")
	}
	down := sockettest.StartServer(t, sockettest.Spec{Name: "payments", Register: func(srv *socket.Server) {
		must(t, srv.Handle("SEEN", socket.Typed(func(ctx context.Context, _ string, _ struct{}) (traceSeen, error) {
			m := socket.MetaFrom(ctx)
			return traceSeen{m.TraceParent, m.TraceState}, nil
		})))
	}})
	downClient := sockettest.DialServer(t, down)
	up := sockettest.StartServer(t, sockettest.Spec{Name: "orders", Register: func(srv *socket.Server) {
		must(t, srv.Handle("FORWARD", socket.Typed(func(ctx context.Context, _ string, _ struct{}) (traceSeen, error) {
			if id := tracing.TraceID(ctx); id != "" {
				t.Errorf("the handler's context has trace id %s with tracing off", id)
			}
			return caller.Call[traceSeen](ctx, downClient, "SEEN", "", nil)
		})))
	}})

	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := caller.ContextWithMeta(sockettest.Context(t), socket.Meta{TraceParent: parent, TraceState: "vendor=1"})
	got, err := caller.Call[traceSeen](ctx, sockettest.DialServer(t, up), "FORWARD", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (traceSeen{parent, "vendor=1"}); got != want {
		t.Errorf("payments saw %+v, want %+v", got, want)
	}
}
