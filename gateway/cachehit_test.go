package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/internal/asyncwriter"
	"github.com/streamgate/streamgate/services/socket"
)

// maxCacheHitAllocs bounds what a cache hit allocates in the gateway
// (GET /v1/users/{id} with an API key, access log at Info through
// asyncwriter): what it allocates now, plus a margin of 2. The request
// and the ResponseWriter are the server's and are reused here, so only
// the gateway's own allocations count.
const maxCacheHitAllocs = 4

// hitWriter is a ResponseWriter that keeps nothing but the status and
// the header map, which it reuses: what it allocates is none of the
// gateway's doing.
type hitWriter struct {
	header http.Header
	status int
	body   int
}

func (w *hitWriter) Header() http.Header { return w.header }

func (w *hitWriter) WriteHeader(status int) { w.status = status }

func (w *hitWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body += len(b)
	return len(b), nil
}

// reset readies the writer for the next request.
func (w *hitWriter) reset() {
	clear(w.header)
	w.status, w.body = 0, 0
}

// newCacheHitGateway returns a gateway whose GET /v1/users/{id} is cached
// for an hour, logging at Info through asyncwriter into io.Discard as the
// commands log, and a request for GET /v1/users/1 with alice's API key,
// whose answer is already cached.
func newCacheHitGateway(tb testing.TB) (*gateway.Gateway, *http.Request) {
	tb.Helper()
	addr := serveSocket(tb, "users", []socket.ServerOption{socket.WithoutCoalescing()}, func(srv *socket.Server) error {
		return srv.Handle("GET_USER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
			return json.Marshal(map[string]any{"id": r.ResourceID, "name": "Oska", "email": "oska@example.com"})
		}), socket.Read())
	})
	cfg := parseConfig(tb, strings.Replace(benchYAML, "crud: [get]", "crud: [get], cache_ttl: 1h", 1), map[string]*fakeService{"users": {Addr: addr}})
	aw := asyncwriter.New(io.Discard, 0)
	tb.Cleanup(func() { _ = aw.Close() })
	g, err := gateway.New(cfg, gateway.WithoutCoalescing(), gateway.WithLogger(slog.New(slog.NewTextHandler(aw, nil))))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Close(context.Background()) })
	req, err := http.NewRequest("GET", "http://gateway/v1/users/1", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("X-API-Key", aliceKey)
	w := &hitWriter{header: http.Header{}}
	g.ServeHTTP(w, req) // fills the cache
	if w.status != http.StatusOK || w.header.Get("X-Cache") != "miss" {
		tb.Fatalf("first request: %d X-Cache %q", w.status, w.header.Get("X-Cache"))
	}
	return g, req
}

// serveHit serves req on w and reports an error unless the cache
// answered it.
func serveHit(tb testing.TB, g *gateway.Gateway, w *hitWriter, req *http.Request) bool {
	w.reset()
	g.ServeHTTP(w, req)
	if w.status != http.StatusOK || w.header.Get("X-Cache") != "hit" || w.body == 0 {
		tb.Errorf("%d X-Cache %q, %d bytes", w.status, w.header.Get("X-Cache"), w.body)
		return false
	}
	return true
}

// TestCacheHitAllocations holds a cache hit to maxCacheHitAllocs.
func TestCacheHitAllocations(t *testing.T) {
	if raceDetector {
		t.Skip("allocations are not counted under -race: sync.Pool drops items at random")
	}
	g, req := newCacheHitGateway(t)
	w := &hitWriter{header: http.Header{}}
	allocs := testing.AllocsPerRun(200, func() { serveHit(t, g, w, req) })
	if t.Failed() {
		return
	}
	t.Logf("a cache hit allocates %.0f times", allocs)
	if allocs > maxCacheHitAllocs {
		t.Fatalf("a cache hit allocates %.0f times; at most %d allowed", allocs, maxCacheHitAllocs)
	}
	for _, h := range []string{"ETag", "Cache-Control", "Content-Type", "X-Content-Type-Options", "X-Request-Id"} {
		if w.header.Get(h) == "" {
			t.Errorf("a cache hit has no %s", h)
		}
	}
}

// BenchmarkCacheHit measures a cache hit in-process (the gateway's own
// work is all there is), reporting its allocations.
//
//	go test -run '^$' -bench BenchmarkCacheHit -benchmem ./gateway/
func BenchmarkCacheHit(b *testing.B) {
	g, req := newCacheHitGateway(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &hitWriter{header: http.Header{}}
		for pb.Next() {
			if !serveHit(b, g, w, req) {
				return
			}
		}
	})
}
