package observe

import (
	"context"
	"net/http"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/tracing"
)

// TestTracerWithoutProviderDoesNothing: until a program sets a
// TracerProvider (no exporter configured), the tracer's events return
// the context they were given, untouched, and allocate nothing: a
// request pays the one check.
func TestTracerWithoutProviderDoesNothing(t *testing.T) {
	if tracing.Enabled() {
		t.Skip("a TracerProvider is set")
	}
	tr := NewTracer()
	route := &Route{Version: "v1", Template: "/v1/users/{id}", Method: http.MethodGet, Name: "GET /v1/users/{id}", Service: "users", Action: "GET_USER"}
	step := &config.Step{Name: "get", Service: "users", Action: "GET_USER"}
	ctx := context.Background()
	for _, protocol := range []string{ProtocolHTTP, ProtocolWebSocket, ProtocolGRPC} {
		r := &Record{Protocol: protocol, Method: http.MethodGet, Path: "/v1/users/1", Route: route}
		allocs := testing.AllocsPerRun(100, func() {
			if got := tr.Begin(ctx, r); got != ctx {
				t.Errorf("%s: Begin made a context", protocol)
			}
			tr.Resolved(ctx, r)
			if got := tr.StepBegan(ctx, r, step); got != ctx {
				t.Errorf("%s: StepBegan made a context", protocol)
			}
			tr.StepEnded(ctx, r, StepOutcome{Step: step})
			tr.End(ctx, r)
		})
		if allocs != 0 {
			t.Errorf("%s: the tracer's events allocate %.0f times", protocol, allocs)
		}
	}
}

// BenchmarkTracerWithoutProvider is a request's record told to the
// observers with and without the tracer, no TracerProvider set:
// tracer=on costs its checks, no allocation.
//
//	go test -run '^$' -bench BenchmarkTracerWithoutProvider -benchmem -count 6 ./gateway/observe/
func BenchmarkTracerWithoutProvider(b *testing.B) {
	route := Route{Version: "v1", Template: "/v1/users/{id}", Method: http.MethodGet}
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "tracer=off", true: "tracer=on"}[on], func(b *testing.B) {
			obs := New(NewStats())
			if on {
				obs = New(NewStats(), NewTracer())
			}
			ri := obs.NewRoute(route)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					r := obs.NewRecord(ProtocolHTTP, http.MethodGet)
					ctx := r.Begin(ctx)
					r.Resolve(ctx, ri, "alice")
					r.Answer(ctx, http.StatusOK, nil, "hit", false)
					r.End(ctx)
				}
			})
		})
	}
}
