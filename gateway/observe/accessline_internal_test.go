package observe

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// oddStrings are values each format must quote or escape as slog does.
var oddStrings = []string{
	"", "plain", "with space", `with "quotes"`, "a=b", "=", `back\slash`, "tab\there", "new\nline",
	"cr\r", "\x00nul", "\x1fus", "\x7fdel", "bad\xffutf8", "\xc3", "ünïcödé", "日本語", "\u00a0nbsp", "\u2028ls\u2029ps",
	"\u200bzero-width", "emoji 🎉", "\uFFFD", "<html>&amp;", "-", "\\", `"`, " ", "\u0085next-line", "\U0010ffff",
}

// bothLines returns r's access line as slog's handler writes it (through
// AccessLog's slog path) and as base (whose clock keeps the last second
// it formatted) appends it, both ended at now, with pre as the logger's
// With attributes.
func bothLines(t testing.TB, base *LogHandler, r *Record, now time.Time, pre ...any) (want, got string) {
	t.Helper()
	var buf bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&buf, nil)
	if base.format == LogJSON {
		h = slog.NewJSONHandler(&buf, nil)
	}
	NewAccessLog(slog.New(h).With(pre...)).log(context.Background(), r, now)
	direct, ok := slog.New(base).With(pre...).Handler().(*LogHandler)
	if !ok || !direct.direct {
		t.Fatalf("With(%v) is not direct", pre)
	}
	return buf.String(), string(direct.appendAccess(nil, r, now))
}

func TestAccessLineIsSlogsLine(t *testing.T) {
	zone := time.FixedZone("X", 5*3600+1800)
	nows := []time.Time{
		time.Date(2026, 12, 7, 16, 30, 5, 123456789, zone), time.Date(2026, 12, 7, 16, 30, 5, 0, zone),
		time.Date(2026, 12, 7, 16, 30, 5, 999999999, zone), time.Date(2026, 12, 7, 16, 30, 5, 1000, zone).UTC(),
		time.Date(2026, 12, 7, 16, 30, 6, 120000000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 5000000, time.UTC),
		time.Date(2026, 12, 7, 16, 30, 6, 7, time.Local), time.Now(),
	}
	routes := []*Route{nil, {Name: "GET /v1/users/{id}", Actions: "users.GET_USER"},
		Observers(nil).NewRoute(Route{Method: "POST", Template: "/v3/orders/{id}/pay", Actions: "orders.CHECK_PURCHASABLE,payments.PAY"})}
	traced := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff}})
	durations := []time.Duration{0, 1, 999, 1500, 12345678, 3*time.Second + 5, 2*time.Hour + 3*time.Minute, -5 * time.Millisecond}
	for _, f := range []LogFormat{LogText, LogJSON} {
		base := NewLogHandler(&bytes.Buffer{}, f, slog.LevelInfo)
		for i, s := range oddStrings {
			r := &Record{
				Protocol: ProtocolHTTP, Method: s, Path: s + "/p", RequestID: s, Version: s, Principal: s, Cache: s,
				Route: routes[i%3], Replayed: i%3 == 0,
				GRPCCode: map[bool]string{true: s}[i%2 == 0], Status: []int{0, 200, 404, 499}[i%4], Gone: i%5 == 0,
			}
			switch i % 3 {
			case 0:
				r.Trace = traced
			case 1:
				r.TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
			}
			now := nows[i%len(nows)]
			r.Start = now.Add(-durations[i%len(durations)])
			pre := []any{"part", s, "n", i, "ok", i%2 == 0, "d", durations[i%len(durations)], "u", uint64(i), "k" + s, "v"}
			want, got := bothLines(t, base, r, now, pre...)
			if got != want {
				t.Errorf("format %d, %q:\ngot  %s\nwant %s", f, s, got, want)
			}
		}
	}
}

// TestAccessLineFallsBack: a handler the encoder cannot follow (a group,
// an attribute of another kind) logs the access lines through slog, and
// a level above Info writes none.
func TestAccessLineFallsBack(t *testing.T) {
	var buf bytes.Buffer
	h := NewLogHandler(&buf, LogText, slog.LevelInfo)
	for name, logger := range map[string]*slog.Logger{
		"group":   slog.New(h).WithGroup("g"),
		"float":   slog.New(h).With("f", 1.5),
		"any":     slog.New(h).With("a", []int{1}),
		"no key":  slog.New(h).With(slog.String("", "x")),
		"a group": slog.New(h).With(slog.Group("g", "a", 1)),
	} {
		if l := NewAccessLog(logger); l.direct != nil {
			t.Errorf("%s: direct", name)
		}
	}
	if l := NewAccessLog(slog.New(h).With("part", "gateway")); l.direct == nil || !l.on {
		t.Errorf("With(part, gateway): direct %v, on %v", l.direct != nil, l.on)
	}
	if l := NewAccessLog(slog.New(NewLogHandler(&buf, LogJSON, slog.LevelWarn))); l.on {
		t.Error("level warn: on")
	}
	l := NewAccessLog(slog.New(NewLogHandler(&buf, LogText, slog.LevelWarn)))
	l.End(context.Background(), &Record{Protocol: ProtocolHTTP})
	if buf.Len() != 0 {
		t.Errorf("level warn logged %q", buf.String())
	}
}

func FuzzAccessLine(f *testing.F) {
	for i, s := range oddStrings {
		f.Add(s, oddStrings[(i+1)%len(oddStrings)], int64(i)*1234567, i%2 == 0)
	}
	bases := []*LogHandler{NewLogHandler(&bytes.Buffer{}, LogText, slog.LevelInfo), NewLogHandler(&bytes.Buffer{}, LogJSON, slog.LevelInfo)}
	f.Fuzz(func(t *testing.T, s, tp string, d int64, json bool) {
		now := time.Unix(1796000000+d%100000, d%1e9+1e9).In(map[bool]*time.Location{false: time.UTC, true: time.FixedZone("", -3*3600)}[json])
		r := &Record{
			Protocol: s, Method: s, Path: s, RequestID: tp, TraceParent: tp, Version: s, Principal: tp,
			Cache: s, GRPCCode: tp, Start: now.Add(-time.Duration(d)), Route: &Route{Name: s, Actions: tp},
			Replayed: json,
		}
		if d%2 == 0 { // its fields encoded once, as the tables' routes are
			r.Route = Observers(nil).NewRoute(*r.Route)
		}
		for _, base := range bases {
			if want, got := bothLines(t, base, r, now, "part", tp, "d", time.Duration(d)); got != want {
				t.Errorf("format %d:\ngot  %s\nwant %s", base.format, got, want)
			}
		}
	})
}
