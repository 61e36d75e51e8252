package observe

import (
	"context"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
