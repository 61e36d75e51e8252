package load_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// idServer answers GET /items/{id}: 503 for ids that are multiples of 10,
// 200 otherwise, and counts what it saw.
type idServer struct {
	hits        atomic.Int64
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
	mu          sync.Mutex
	seen        map[string]int // guarded by mu
	headers     []string       // guarded by mu: X-Test of each request
	bodies      []string       // guarded by mu
}

func newIDServer(t *testing.T) (*idServer, *httptest.Server) {
	s := &idServer{seen: map[string]int{}}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			m := s.maxInFlight.Load()
			if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		s.hits.Add(1)
		id := strings.TrimPrefix(r.URL.Path, "/items/")
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen[id]++
		s.headers = append(s.headers, r.Header.Get("X-Test"))
		s.bodies = append(s.bodies, string(body))
		s.mu.Unlock()
		if n, _ := strconv.Atoi(id); n%10 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(ts.Close)
	return s, ts
}

func TestClosedLoopCountsRequestsAndStatuses(t *testing.T) {
	s, ts := newIDServer(t)
	var progress []load.Progress
	rep, err := load.Run(context.Background(), load.Options{
		Method:      "POST",
		URL:         ts.URL + "/items/{id}",
		IDs:         load.Range{From: 1, To: 1000},
		Header:      http.Header{"X-Test": {"yes"}},
		Body:        []byte(`{"item":"{id}"}`),
		Connections: 8,
		Duration:    time.Minute, // bounded by MaxRequests long before
		MaxRequests: 500,
		Progress:    func(p load.Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 500 || s.hits.Load() != 500 {
		t.Fatalf("report counts %d requests, server %d; want 500", rep.Requests, s.hits.Load())
	}
	if rep.Statuses[200] != 450 || rep.Statuses[503] != 50 || rep.Errors() != 50 || len(rep.TransportErrors) != 0 {
		t.Fatalf("statuses %v, transport %v, errors %d; want 450×200, 50×503", rep.Statuses, rep.TransportErrors, rep.Errors())
	}
	if m := s.maxInFlight.Load(); m > 8 {
		t.Fatalf("%d requests in flight at once with 8 connections", m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 1; i <= 500; i++ {
		if s.seen[strconv.Itoa(i)] != 1 {
			t.Fatalf("id %d requested %d times, want once", i, s.seen[strconv.Itoa(i)])
		}
	}
	for i, h := range s.headers {
		if h != "yes" || !strings.HasPrefix(s.bodies[i], `{"item":"`) || strings.Contains(s.bodies[i], "{id}") {
			t.Fatalf("request %d: header %q body %q", i, h, s.bodies[i])
		}
	}
	if rep.Latency.Count() != 500 || rep.RequestsPerSecond() <= 0 || rep.Latency.Max() <= 0 {
		t.Fatalf("latency count %d, %.1f req/s", rep.Latency.Count(), rep.RequestsPerSecond())
	}
	for _, p := range progress {
		if p.Requests < 0 || p.Requests > 500 {
			t.Fatalf("progress %+v", p)
		}
	}
}

func TestClosedLoopStopsAtDuration(t *testing.T) {
	s, ts := newIDServer(t)
	start := time.Now()
	rep, err := load.Run(context.Background(), load.Options{
		URL: ts.URL + "/items/{id}", IDs: load.Range{From: 1, To: 9}, Connections: 2, Duration: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 30*time.Second {
		t.Fatalf("ran %v for a 300ms duration", took)
	}
	if rep.Requests == 0 || rep.Requests != s.hits.Load() || rep.Errors() != 0 {
		t.Fatalf("report %d requests (%d errors), server %d", rep.Requests, rep.Errors(), s.hits.Load())
	}
}

func TestFixedRateKeepsToSchedule(t *testing.T) {
	s, ts := newIDServer(t)
	// 200/s: the 40th request is due 200ms after the start, however fast
	// the server answers.
	rep, err := load.Run(context.Background(), load.Options{
		URL: ts.URL + "/items/{id}", IDs: load.Range{From: 1, To: 1000}, Connections: 4,
		Duration: time.Minute, Rate: 200, MaxRequests: 40,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 40 || s.hits.Load() != 40 || rep.Statuses[503] != 4 {
		t.Fatalf("report %d requests %v, server %d; want 40 with 4×503", rep.Requests, rep.Statuses, s.hits.Load())
	}
	if rep.Elapsed < 195*time.Millisecond {
		t.Fatalf("40 requests at 200/s took %v, want at least 195ms", rep.Elapsed)
	}
	if rep.Mode() != "fixed rate 200/s" {
		t.Fatalf("mode %q", rep.Mode())
	}
}

func TestFixedRateChargesTheWaitBehindAStall(t *testing.T) {
	// The first request stalls 300ms on the only connection; at 100/s the
	// next 29 are due every 10ms meanwhile. Counted from when they were
	// due, about half of them waited more than 150ms, though the server
	// answered each at once.
	stall := make(chan struct{})
	stalled := time.AfterFunc(300*time.Millisecond, func() { close(stall) })
	defer stalled.Stop()
	var first atomic.Bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		}
	}))
	defer ts.Close()
	rep, err := load.Run(context.Background(), load.Options{
		URL: ts.URL + "/", Connections: 1, Duration: time.Minute, Rate: 100, MaxRequests: 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 30 || rep.Errors() != 0 {
		t.Fatalf("%d requests, %d errors", rep.Requests, rep.Errors())
	}
	if p50 := rep.Latency.Percentile(50); p50 < 100*time.Millisecond {
		t.Fatalf("p50 %v: the wait behind the stall was not counted", p50)
	}
}

func TestTransportErrorsCountedByKind(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	rep, err := load.Run(context.Background(), load.Options{
		URL: "http://" + addr + "/", Connections: 2, Duration: time.Minute, MaxRequests: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 5 || rep.TransportErrors["connection refused"] != 5 || rep.Errors() != 5 || rep.FirstTransportError == "" {
		t.Fatalf("%d requests, transport errors %v", rep.Requests, rep.TransportErrors)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "connection refused: 5") {
		t.Fatalf("text %q (%v)", text.String(), err)
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	_, ts := newIDServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	rep, err := load.Run(ctx, load.Options{
		URL: ts.URL + "/items/{id}", IDs: load.Range{From: 1, To: 9}, Connections: 2, Duration: time.Hour,
		Progress: func(load.Progress) { once.Do(cancel) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests == 0 || rep.Elapsed > 30*time.Second {
		t.Fatalf("%d requests in %v", rep.Requests, rep.Elapsed)
	}
}

func TestOptionsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    load.Options
		want string
	}{
		{"no url", load.Options{Duration: time.Second}, "no URL"},
		{"not loopback", load.Options{URL: "http://192.0.2.1/x", Duration: time.Second}, "loopback"},
		{"hostname", load.Options{URL: "http://example.com/x", Duration: time.Second}, "loopback"},
		{"scheme", load.Options{URL: "ftp://127.0.0.1/x", Duration: time.Second}, "http://"},
		{"no duration", load.Options{URL: "http://127.0.0.1/x"}, "duration"},
		{"negative rate", load.Options{URL: "http://127.0.0.1/x", Duration: time.Second, Rate: -1}, "rate"},
		{"ids backwards", load.Options{URL: "http://127.0.0.1/x", Duration: time.Second, IDs: load.Range{From: 5, To: 2}}, "ids"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load.Run(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	t.Run("ranges", func(t *testing.T) {
		for in, want := range map[string]load.Range{"1-1000": {1, 1000}, "7": {7, 7}, " 0-0 ": {0, 0}} {
			if got, err := load.ParseRange(in); err != nil || got != want {
				t.Errorf("ParseRange(%q) = %v, %v", in, got, err)
			}
		}
		for _, in := range []string{"", "a-b", "5-1", "1-", "-3"} {
			if _, err := load.ParseRange(in); err == nil {
				t.Errorf("ParseRange(%q) accepted", in)
			}
		}
	})
	t.Run("rates", func(t *testing.T) {
		for in, want := range map[string]struct {
			n   int
			per time.Duration
		}{"500": {500, time.Second}, "500/s": {500, time.Second}, "30/1m": {30, time.Minute}, "30/m": {30, time.Minute}, "0": {0, time.Second}} {
			if n, per, err := load.ParseRate(in); err != nil || n != want.n || per != want.per {
				t.Errorf("ParseRate(%q) = %d/%v, %v", in, n, per, err)
			}
		}
		for _, in := range []string{"", "x", "-5", "5/0s", "5/x"} {
			if _, _, err := load.ParseRate(in); err == nil {
				t.Errorf("ParseRate(%q) accepted", in)
			}
		}
	})
	t.Run("headers", func(t *testing.T) {
		h := http.Header{}
		if err := load.ParseHeader(h, "X-API-Key: k: v"); err != nil || h.Get("X-Api-Key") != "k: v" {
			t.Errorf("got %v, %v", h, err)
		}
		for _, in := range []string{"nocolon", ": v", "Bad Name: v"} {
			if err := load.ParseHeader(h, in); err == nil {
				t.Errorf("ParseHeader(%q) accepted", in)
			}
		}
	})
}

func TestReportOutputs(t *testing.T) {
	_, ts := newIDServer(t)
	rep, err := load.Run(context.Background(), load.Options{
		URL: ts.URL + "/items/{id}", IDs: load.Range{From: 1, To: 100}, Connections: 4, Duration: time.Minute, MaxRequests: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"100 in", "req/s", "p50 ", "p90 ", "p99 ", "p99.9 ", "max ", "200: 90", "503: 10 (error)", "errors     10", "closed loop"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Requests    int64              `json:"requests"`
		Statuses    map[string]int64   `json:"statuses"`
		Errors      int64              `json:"errors"`
		LatencyMS   map[string]float64 `json:"latency_ms"`
		Percentiles []struct {
			Percentile float64 `json:"percentile"`
		} `json:"percentiles"`
		Histogram []struct {
			Count int64 `json:"count"`
		} `json:"histogram"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var inBuckets int64
	for _, b := range got.Histogram {
		inBuckets += b.Count
	}
	if got.Requests != 100 || got.Statuses["503"] != 10 || got.Errors != 10 || inBuckets != 100 ||
		got.LatencyMS["p99.9"] <= 0 || got.LatencyMS["max"] < got.LatencyMS["p50"] || len(got.Percentiles) == 0 {
		t.Fatalf("json %s", js.String())
	}

	var svg bytes.Buffer
	if err := load.WriteSVG(&svg, "a <chart>", []load.Series{{Name: "run & co", Latency: rep.Latency}}); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&svg)
	polylines := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	if polylines != 1 {
		t.Fatalf("%d curves, want 1", polylines)
	}
}
