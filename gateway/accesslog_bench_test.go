package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/internal/asyncwriter"
	"github.com/streamgate/streamgate/services/socket"
)

// BenchmarkAccessLog measures what the access log costs a cache hit
// (served in-process: the gateway's own work is all there is), written
// to a real file as stderr would be:
//
//   - level=warn: no access line (the baseline);
//   - level=info/sync: a line per request, each one write(2), as a text
//     handler on the file itself does;
//   - level=info/async: a line per request through asyncwriter and
//     slog.TextHandler, as a library user's logger might;
//   - level=info/direct and level=warn/direct: as the commands log
//     (tools/streamgate/logflags.go), an observe.LogHandler over
//     asyncwriter, whose access lines skip slog.
//
// go test -run '^$' -bench BenchmarkAccessLog -count 6 ./gateway/
func BenchmarkAccessLog(b *testing.B) {
	addr := serveSocket(b, "users", []socket.ServerOption{socket.WithoutCoalescing()}, func(srv *socket.Server) error {
		return srv.Handle("GET_USER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
			return json.Marshal(map[string]any{"id": r.ResourceID, "name": "Oska", "email": "oska@example.com"})
		}), socket.Read())
	})
	cached := parseConfig(b, strings.Replace(benchYAML, "crud: [get]", "crud: [get], cache_ttl: 1h", 1), map[string]*fakeService{"users": {Addr: addr}})
	newRequest := func() *http.Request {
		req, _ := http.NewRequest("GET", "http://gateway/v1/users/1", nil)
		req.Header.Set("X-API-Key", aliceKey)
		return req
	}
	for _, mode := range []string{"level=warn", "level=info/sync", "level=info/async", "level=warn/direct", "level=info/direct"} {
		b.Run(mode, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "stderr"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var out io.Writer = f
			level := slog.LevelInfo
			if strings.HasPrefix(mode, "level=warn") {
				level = slog.LevelWarn
			}
			if strings.HasSuffix(mode, "/async") || strings.HasSuffix(mode, "/direct") {
				aw := asyncwriter.New(f, 0)
				defer aw.Close()
				out = aw
			}
			logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
			if strings.HasSuffix(mode, "/direct") {
				logger = slog.New(observe.NewLogHandler(out, observe.LogText, level))
			}
			g, err := gateway.New(cached, gateway.WithoutCoalescing(), gateway.WithLogger(logger))
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close(context.Background())
			g.ServeHTTP(httptest.NewRecorder(), newRequest()) // fills the cache
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w := httptest.NewRecorder()
					g.ServeHTTP(w, newRequest())
					if w.Code != 200 || w.Header().Get("X-Cache") != "hit" {
						b.Errorf("%d X-Cache %q %s", w.Code, w.Header().Get("X-Cache"), w.Body)
						return
					}
				}
			})
		})
	}
}
