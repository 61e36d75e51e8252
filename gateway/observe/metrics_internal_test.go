package observe

import (
	"context"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// BenchmarkMetricsBookkeeping is what the metrics add to one cached read,
// alone: the request's record, in flight, the request counter and latency
// histogram of its route, and the cache outcome, told through the
// observation hook (compare BenchmarkGatewayMetrics/cache-hit in package
// gateway, the whole request).
func BenchmarkMetricsBookkeeping(b *testing.B) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	obs := New(m)
	route := obs.NewRoute(Route{Version: "v1", Template: "/v1/users/{id}", Method: http.MethodGet})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			r := obs.NewRecord(ProtocolHTTP, http.MethodGet)
			ctx := r.Begin(ctx)
			r.Resolve(ctx, route, "alice")
			r.Cached(CacheEvent{Read: CacheHit, Cacheable: true})
			r.Status = http.StatusOK
			r.End(ctx)
		}
	})
}

// TestRouteSeriesLookedUpOnce: a route's per-event series (steps, undo
// actions, shed answers, replays, conflicts) are counted under the right
// labels when their series is made and when it is reused.
func TestRouteSeriesLookedUpOnce(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	obs := New(m)
	r := &Record{obs: obs, Route: obs.NewRoute(Route{Version: "v1", Template: "/v1/orders/{id}/buy", Method: http.MethodPost})}
	charge, finish := &config.Step{Name: "charge"}, &config.Step{Name: "finish"}
	for range 3 {
		m.StepEnded(context.Background(), r, StepOutcome{Step: charge})
		m.Shed(r, &status.Error{Code: socket.CodeUnavailable})
		m.Idempotency(r, IdempotencyOutcome{Replayed: true})
	}
	m.StepEnded(context.Background(), r, StepOutcome{Step: finish, Err: &status.Error{Code: "CONFLICT"}})
	m.StepEnded(context.Background(), r, StepOutcome{Step: charge, Err: &status.Error{Code: "CONFLICT"}})
	m.StepEnded(context.Background(), r, StepOutcome{Step: charge, UndoOf: charge})
	m.StepEnded(context.Background(), r, StepOutcome{Step: charge, UndoOf: charge, Err: &status.Error{Code: "INTERNAL"}})
	m.Idempotency(r, IdempotencyOutcome{Conflict: "idempotency_key_in_use"})
	for _, c := range []struct {
		series prometheus.Counter
		want   float64
	}{
		{m.steps.WithLabelValues("v1", "/v1/orders/{id}/buy", "charge", "OK"), 3},
		{m.steps.WithLabelValues("v1", "/v1/orders/{id}/buy", "finish", "CONFLICT"), 1},
		{m.steps.WithLabelValues("v1", "/v1/orders/{id}/buy", "charge", "CONFLICT"), 1},
		{m.compensations.WithLabelValues("v1", "/v1/orders/{id}/buy", "charge", "ok"), 1},
		{m.compensations.WithLabelValues("v1", "/v1/orders/{id}/buy", "charge", "failed"), 1},
		{m.shedTotal.WithLabelValues("v1", "/v1/orders/{id}/buy", string(socket.CodeUnavailable), ""), 3},
		{m.replays.WithLabelValues("v1", "/v1/orders/{id}/buy"), 3},
		{m.conflicts.WithLabelValues("v1", "/v1/orders/{id}/buy", "idempotency_key_in_use"), 1},
	} {
		var d dto.Metric
		if err := c.series.Write(&d); err != nil {
			t.Fatal(err)
		}
		if got := d.GetCounter().GetValue(); got != c.want {
			t.Errorf("%s %v: %v, want %v", c.series.Desc(), d.GetLabel(), got, c.want)
		}
	}
}
