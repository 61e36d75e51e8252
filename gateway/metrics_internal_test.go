package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamgate/streamgate/gateway/config"
)

// BenchmarkMetricsBookkeeping is what the metrics add to one cached read,
// alone: the writer wrapper, in flight, the request counter and latency
// histogram of its route, and the cache outcome (compare
// BenchmarkGatewayMetrics/cache-hit, the whole request).
func BenchmarkMetricsBookkeeping(b *testing.B) {
	m, err := newGatewayMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	rt := &config.Route{Form: config.FormItem, Method: http.MethodGet}
	res := &config.Resource{Name: "users", Routes: []*config.Route{rt}}
	v := &config.Version{Name: "v1", Resources: map[string]*config.Resource{"users": res}}
	routes := m.routeMetricsOf(&config.Config{Versions: map[string]*config.Version{"v1": v}})
	t := &table{metrics: routes}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var w http.ResponseWriter = httptest.NewRecorder()
		for pb.Next() {
			mw := m.begin(w)
			rm := t.routeMetrics(resolved{version: v, resource: res, route: rt})
			routeOf(mw, rm)
			rm.cached(outcomeHit)
			mw.WriteHeader(http.StatusOK)
			m.end(mw, http.MethodGet)
		}
	})
}
