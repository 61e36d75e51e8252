package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
)

// BenchmarkGatewayMetrics measures what the metrics cost a request, each
// set-up through two gateways in front of one service: without metrics
// (metrics=off) and with WithMetrics (metrics=on).
//
//   - loopback: BenchmarkGateway's request (GET /v1/users/1, API key, one
//     GET_USER frame over loopback, coalescing off) over HTTP on loopback;
//   - cache-hit: the same GET answered from the gateway's cache, served by
//     calling ServeHTTP in-process: no network, no service, so the
//     gateway's own work (and the metrics' share of it) is all there is.
func BenchmarkGatewayMetrics(b *testing.B) {
	addr := serveSocket(b, "users", []socket.ServerOption{socket.WithoutCoalescing()}, func(srv *socket.Server) error {
		return srv.Handle("GET_USER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
			return json.Marshal(map[string]any{"id": r.ResourceID, "name": "Oska", "email": "oska@example.com"})
		}), socket.Read())
	})
	svcs := map[string]*fakeService{"users": {Addr: addr}}
	uncached := parseConfig(b, benchYAML, svcs)
	cached := parseConfig(b, strings.Replace(benchYAML, "crud: [get]", "crud: [get], cache_ttl: 1h", 1), svcs)
	newGateway := func(b *testing.B, cfg *config.Config, metrics bool) *gateway.Gateway {
		opts := []gateway.Option{gateway.WithoutCoalescing()}
		if metrics {
			opts = append(opts, gateway.WithMetrics(prometheus.NewRegistry()))
		}
		g, err := gateway.New(cfg, opts...)
		if err != nil {
			b.Fatal(err)
		}
		return g
	}
	newRequest := func(url string) *http.Request {
		req, _ := http.NewRequest("GET", url+"/v1/users/1", nil)
		req.Header.Set("X-API-Key", aliceKey)
		return req
	}
	for _, metrics := range []bool{false, true} {
		name := map[bool]string{false: "metrics=off", true: "metrics=on"}[metrics]
		b.Run("loopback/"+name, func(b *testing.B) {
			ts := serveHTTP(b, newGateway(b, uncached, metrics))
			client := ts.Client()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 256
			get := func() bool {
				resp, err := client.Do(newRequest(ts.URL))
				if err != nil {
					b.Error(err)
					return false
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), "Oska") {
					b.Errorf("%d %s", resp.StatusCode, body)
					return false
				}
				return true
			}
			if !get() {
				return
			}
			b.ReportAllocs()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() && get() {
				}
			})
		})
		b.Run("cache-hit/"+name, func(b *testing.B) {
			g := newGateway(b, cached, metrics)
			b.Cleanup(func() { g.Close(context.Background()) })
			get := func() bool {
				w := httptest.NewRecorder()
				g.ServeHTTP(w, newRequest("http://gateway"))
				if w.Code != 200 || w.Header().Get("X-Cache") != "hit" {
					b.Errorf("%d X-Cache %q %s", w.Code, w.Header().Get("X-Cache"), w.Body)
					return false
				}
				return true
			}
			// The first read fills the cache; the second must hit it.
			g.ServeHTTP(httptest.NewRecorder(), newRequest("http://gateway"))
			if !get() {
				return
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() && get() {
				}
			})
		})
	}
}
