package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/internal/asyncwriter"
	"github.com/streamgate/streamgate/services/socket"
)

// newLoggedHitGateway returns a gateway logging to logger, whose GET
// /v1/users/{id} is cached, and alice's request for user 1, cached.
func newLoggedHitGateway(tb testing.TB, logger *slog.Logger) (*gateway.Gateway, *http.Request) {
	tb.Helper()
	addr := serveSocket(tb, "users", []socket.ServerOption{socket.WithoutCoalescing()}, func(srv *socket.Server) error {
		return srv.Handle("GET_USER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
			return json.Marshal(map[string]any{"id": r.ResourceID, "name": "Oska"})
		}), socket.Read())
	})
	cfg := parseConfig(tb, strings.Replace(benchYAML, "crud: [get]", "crud: [get], cache_ttl: 1h", 1), map[string]*fakeService{"users": {Addr: addr}})
	g, err := gateway.New(cfg, gateway.WithoutCoalescing(), gateway.WithLogger(logger))
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
	return g, req
}

// commandsLogger returns a logger as the commands make it: an
// observe.LogHandler over asyncwriter into out.
func commandsLogger(tb testing.TB, out io.Writer, format observe.LogFormat, level slog.Level) (*slog.Logger, *asyncwriter.Writer) {
	aw := asyncwriter.New(out, 0)
	tb.Cleanup(func() { _ = aw.Close() })
	return slog.New(observe.NewLogHandler(aw, format, level)), aw
}

// TestAccessLogAllocatesNothing: with the commands' logger, a cache hit
// at Info (its access line written) allocates no more than at Warn (no
// line), in text and in JSON.
func TestAccessLogAllocatesNothing(t *testing.T) {
	if raceDetector {
		t.Skip("allocations are not counted under -race: sync.Pool drops items at random")
	}
	for _, format := range []observe.LogFormat{observe.LogText, observe.LogJSON} {
		allocs := map[slog.Level]float64{}
		for _, level := range []slog.Level{slog.LevelWarn, slog.LevelInfo} {
			logger, _ := commandsLogger(t, io.Discard, format, level)
			g, req := newLoggedHitGateway(t, logger)
			w := &hitWriter{header: http.Header{}}
			allocs[level] = testing.AllocsPerRun(200, func() { serveHit(t, g, w, req) })
		}
		if allocs[slog.LevelInfo] > allocs[slog.LevelWarn] {
			t.Errorf("format %d: a cache hit allocates %.0f times at info, %.0f at warn", format, allocs[slog.LevelInfo], allocs[slog.LevelWarn])
		}
	}
}

// lineTimes are an access line's time and duration, which differ from
// one request to the next.
var lineTimes = regexp.MustCompile(`(time=|"time":)"?[^ ",]+"?|(duration=|"duration":)[^ ,}]+`)

// TestAccessLogThroughTheCommandsLogger: the access line the gateway
// writes through the commands' logger is the line slog's handler writes
// for the same request (time and duration aside), in text and in JSON,
// for a request whose path needs quoting and that continues a trace.
func TestAccessLogThroughTheCommandsLogger(t *testing.T) {
	for _, format := range []observe.LogFormat{observe.LogText, observe.LogJSON} {
		var viaSlog, direct bytes.Buffer
		var h slog.Handler = slog.NewTextHandler(&viaSlog, nil)
		if format == observe.LogJSON {
			h = slog.NewJSONHandler(&viaSlog, nil)
		}
		logger, aw := commandsLogger(t, &direct, format, slog.LevelInfo)
		lines := map[*bytes.Buffer]string{}
		for buf, logger := range map[*bytes.Buffer]*slog.Logger{&viaSlog: slog.New(h), &direct: logger} {
			g, req := newLoggedHitGateway(t, logger)
			req = req.Clone(context.Background())
			req.URL.Path = `/v1/users/a "b"=c`
			req.Header.Set("X-Request-Id", "req-1")
			req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			aw.Flush()
			buf.Reset()
			w := &hitWriter{header: http.Header{}}
			g.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				t.Fatalf("status %d", w.status)
			}
			aw.Flush()
			lines[buf] = lineTimes.ReplaceAllString(buf.String(), "$1$2…")
		}
		if lines[&direct] != lines[&viaSlog] || !strings.Contains(lines[&direct], "4bf92f3577b34da6a3ce929d0e0e4736") || !strings.Contains(lines[&direct], `/v1/users/a \"b\"=c"`) || strings.Count(lines[&direct], "\n") != 1 {
			t.Errorf("format %d: the commands' line\n%s\nslog's\n%s", format, lines[&direct], lines[&viaSlog])
		}
	}
}
