package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/services/socket"
)

// hotYAML serves GET /v1/users/{id}, cached for a second when the cache
// is on.
const hotYAML = `
auth:
  api_keys:
    - {name: alice, secret_env: ALICE_KEY}
services:
  users: {target: "${ADDR_users}", key_env: SERVICE_KEY}
versions:
  v1:
    resources:
      users: {service: users, crud: [get], cache_ttl: 1s}
`

// BenchmarkHotKey reads 10 hot keys through the gateway from many
// goroutines (64 per CPU) into a service whose handler costs 1 ms of CPU
// (a query that keeps a database busy, say): with coalescing and caching
// off (in the gateway and in the service), with coalescing only, and with
// both. It reports requests per second and handler runs per request.
func BenchmarkHotKey(b *testing.B) {
	const keys = 10
	const parallelism = 64
	cases := []struct {
		name    string
		service []socket.ServerOption
		gateway []gateway.Option
	}{
		{"off", []socket.ServerOption{socket.WithoutCoalescing()}, []gateway.Option{gateway.WithCacheSize(0), gateway.WithoutCoalescing()}},
		{"coalescing", nil, []gateway.Option{gateway.WithCacheSize(0)}},
		{"coalescing+cache", nil, nil},
	}
	work := cpuWork(time.Millisecond)
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var runs atomic.Int64
			addr := serveSocket(b, "users", tc.service, func(srv *socket.Server) error {
				return srv.Handle("GET_USER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
					runs.Add(1)
					work()
					return json.RawMessage(`{"id":"` + r.ResourceID + `","name":"Oska","email":"oska@example.com"}`), nil
				}), socket.Read())
			})
			cfg := parseConfig(b, hotYAML, map[string]*fakeService{"users": {Addr: addr}})
			g, err := gateway.New(cfg, tc.gateway...)
			if err != nil {
				b.Fatal(err)
			}
			ts := serveHTTP(b, g)
			tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
			b.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			urls := make([]string, keys)
			for i := range urls {
				urls[i] = fmt.Sprintf("%s/v1/users/%d", ts.URL, i)
			}
			read := func(i int) bool {
				req, _ := http.NewRequest("GET", urls[i%keys], nil)
				req.Header.Set("X-API-Key", aliceKey)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return false
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"`+fmt.Sprint(i%keys)+`"`) {
					b.Errorf("%d %s", resp.StatusCode, body)
					return false
				}
				return true
			}
			for i := range keys {
				if !read(i) {
					return
				}
			}
			var next atomic.Int64
			before := runs.Load()
			b.SetParallelism(parallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !read(int(next.Add(1))) {
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(float64(runs.Load()-before)/float64(b.N), "runs/op")
		})
	}
}

// cpuWork returns a function that keeps one CPU busy for about d:
// hashing, calibrated here (best of five), so that the cost is CPU time
// whatever the scheduler does meanwhile.
func cpuWork(d time.Duration) func() {
	hash := func(n int) {
		var b [64]byte
		for range n {
			sum := sha256.Sum256(b[:])
			b[0] ^= sum[0]
		}
		runtime.KeepAlive(b)
	}
	const probe = 2000
	best := time.Duration(1 << 62)
	for range 5 {
		start := time.Now()
		hash(probe)
		best = min(best, time.Since(start))
	}
	n := max(int(float64(probe)*float64(d)/float64(best)), 1)
	return func() { hash(n) }
}
