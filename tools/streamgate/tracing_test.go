package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/streamgate/streamgate/services/socket/caller"
)

// collector is an OTLP trace receiver: it keeps what it is sent.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer

	mu    sync.Mutex // guards spans
	spans []*tracepb.ResourceSpans
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	c.spans = append(c.spans, req.GetResourceSpans()...)
	c.mu.Unlock()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// services returns the names of the spans received, by service.name.
func (c *collector) services() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]string{}
	for _, rs := range c.spans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				out[service] = append(out[service], s.GetName())
			}
		}
	}
	return out
}

// lineWaiter is a command's stderr: it closes found when a line holds
// the text it waits for.
type lineWaiter struct {
	want  string
	found chan string // receives the line once

	mu   sync.Mutex // guards buf, done
	buf  bytes.Buffer
	done bool
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done {
		for line := range strings.Lines(w.buf.String()) {
			if strings.Contains(line, w.want) {
				w.done = true
				w.found <- line
				break
			}
		}
	}
	return len(p), nil
}

// A serving command exports its spans over OTLP/gRPC to the collector
// OTEL_EXPORTER_OTLP_ENDPOINT names, and flushes them when it stops: the
// batch delay is far longer than the test, so only the flush delivers.
func TestServiceExportsSpansOverOTLP(t *testing.T) {
	col := &collector{}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, col)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
	t.Setenv("STREAMGATE_SERVICE_KEY", "k")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	serveCtx, stop := context.WithCancel(ctx)
	stderr := &lineWaiter{want: "serving", found: make(chan string, 1)}
	exited := make(chan int, 1)
	go func() {
		exited <- dispatch(serveCtx, []string{"service", "echo", "-listen", "127.0.0.1:0", "-store", "memory"}, io.Discard, stderr)
	}()
	var addr string
	select {
	case line := <-stderr.found:
		_, addr, _ = strings.Cut(strings.TrimSpace(line), "addr=")
		addr, _, _ = strings.Cut(addr, " ")
	case code := <-exited:
		t.Fatalf("the service exited with %d before serving", code)
	case <-ctx.Done():
		t.Fatal("the service did not start")
	}
	c, err := caller.Dial(addr, caller.WithKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(ctx, "ECHO", "", map[string]any{"text": "hi"}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	stop()
	if code := <-exited; code != 0 {
		t.Fatalf("the service exited with %d", code)
	}
	got := col.services()
	if !slices.Contains(got["echo"], "ECHO") {
		t.Errorf("the collector got %v, want the service echo's ECHO server span", got)
	}
}

// The exporter speaks OTLP/HTTP when OTEL_EXPORTER_OTLP_PROTOCOL says
// http/protobuf, and OTEL_SERVICE_NAME names the service.
func TestTracerProviderOverHTTP(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not OTLP", http.StatusBadRequest)
			return
		}
		_, _ = col.Export(r.Context(), &req)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	}))
	defer srv.Close()
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_SERVICE_NAME":           "shop-gateway",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	tp, err := newTracerProvider(ctx, func(k string) string { return env[k] }, "streamgate-gateway")
	if err != nil || tp == nil {
		t.Fatalf("newTracerProvider = %v, %v", tp, err)
	}
	_, span := tp.Tracer("test").Start(ctx, "GET /v1/items/{id}")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := col.services(); !slices.Contains(got["shop-gateway"], "GET /v1/items/{id}") {
		t.Errorf("the collector got %v, want the span under service.name shop-gateway", got)
	}
}

// Without an endpoint, or with the SDK or the exporter turned off, there is
// no tracer provider; a protocol it cannot speak is an error.
func TestTracerProviderOff(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"no endpoint":   {},
		"sdk disabled":  {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_SDK_DISABLED": "true"},
		"exporter none": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_TRACES_EXPORTER": "none"},
	} {
		t.Run(name, func(t *testing.T) {
			tp, err := newTracerProvider(context.Background(), func(k string) string { return env[k] }, "x")
			if tp != nil || err != nil {
				t.Errorf("newTracerProvider = %v, %v; want nil, nil", tp, err)
			}
		})
	}
	env := map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
	if _, err := newTracerProvider(context.Background(), func(k string) string { return env[k] }, "x"); err == nil || !strings.Contains(err.Error(), "http/json") {
		t.Errorf("protocol http/json: err = %v, want one naming it", err)
	}
}
