package gateway_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/services/socket"
)

// BenchmarkCacheHitAsCommands measures a cache hit served as the
// gateway command serves it, in-process: metrics on, and the commands'
// logger (an observe.LogHandler over asyncwriter) writing to a real file
// as stderr would be, at level=info (an access line per hit, the
// default) and at level=warn (none). The request and the writer are
// reused, so what it allocates is the gateway's own. Each hit yields
// the CPU after it, as a server's connection goroutine parks between
// requests: on one CPU the log's writer (and its Linger timer) would
// otherwise run only when the scheduler preempts the hits, every 10 ms
// or more, and lines would pile up and be dropped (a quarter of them,
// reported as dropped/op), which a server does not see. logB/op is the
// log's bytes per hit. Run on one CPU to measure a hit as `bench
// compare` does (the server pinned to a core):
//
//	go test -c -o g.test ./gateway/
//	/usr/bin/time -f '%U %S' ./g.test -test.run '^$' -test.bench 'BenchmarkCacheHitAsCommands/level=info' -test.benchtime 300000x -test.cpu 1 -test.benchmem
func BenchmarkCacheHitAsCommands(b *testing.B) {
	addr := serveSocket(b, "users", []socket.ServerOption{socket.WithoutCoalescing()}, func(srv *socket.Server) error {
		return srv.Handle("GET_USER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
			return json.Marshal(map[string]any{"id": r.ResourceID, "name": "Oska", "email": "oska@example.com"})
		}), socket.Read())
	})
	cfg := parseConfig(b, strings.Replace(benchYAML, "crud: [get]", "crud: [get], cache_ttl: 1h", 1), map[string]*fakeService{"users": {Addr: addr}})
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
		b.Run("level="+strings.ToLower(level.String()), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "stderr"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			logger, aw := commandsLogger(b, f, observe.LogText, level)
			g, err := gateway.New(cfg, gateway.WithoutCoalescing(), gateway.WithLogger(logger), gateway.WithMetrics(prometheus.NewRegistry()))
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close(context.Background())
			req, err := http.NewRequest("GET", "http://gateway/v1/users/1", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("X-API-Key", aliceKey)
			w := &hitWriter{header: http.Header{}}
			g.ServeHTTP(w, req) // fills the cache
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := &hitWriter{header: http.Header{}}
				for pb.Next() {
					if !serveHit(b, g, w, req) {
						return
					}
					runtime.Gosched()
				}
			})
			b.StopTimer()
			aw.Flush()
			fi, _ := f.Stat()
			b.ReportMetric(float64(aw.Dropped())/float64(b.N), "dropped/op")
			b.ReportMetric(float64(fi.Size())/float64(b.N), "logB/op")
		})
	}
}
