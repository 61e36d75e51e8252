package gateway

import (
	"context"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamgate/streamgate/gateway/config"
)

// BenchmarkMetricsBookkeeping is what the metrics add to one cached read,
// alone: the request's record, in flight, the request counter and latency
// histogram of its route, and the cache outcome, told through the
// observation hook (compare BenchmarkGatewayMetrics/cache-hit, the whole
// request).
func BenchmarkMetricsBookkeeping(b *testing.B) {
	m, err := newGatewayMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	obs := observers{m}
	rt := &config.Route{Form: config.FormItem, Method: http.MethodGet}
	res := &config.Resource{Name: "users", Routes: []*config.Route{rt}}
	v := &config.Version{Name: "v1", Resources: map[string]*config.Resource{"users": res}}
	t := &table{routes: obs.routesOf(&config.Config{Versions: map[string]*config.Version{"v1": v}})}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			r := obs.newRequest(protocolHTTP, http.MethodGet)
			ctx := r.begin(ctx)
			r.resolve(ctx, t.routeInfo(resolved{version: v, resource: res, route: rt}), "alice")
			r.cached(cacheEvent{read: outcomeHit, cacheable: true})
			r.status = http.StatusOK
			r.end(ctx)
		}
	})
}
