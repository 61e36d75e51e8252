package socket_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/internal/promtest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

func TestServerMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var flights coalesce.Group
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	ts := sockettest.StartServer(t, sockettest.Spec{Name: "metered", Opts: []socket.ServerOption{socket.WithMetrics(reg), socket.WithFlights(&flights)}, Register: func(srv *socket.Server) {
		sockettest.RegisterEcho(t, srv)
		must(t, srv.Handle("GATE", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
			started <- struct{}{}
			<-release
			return json.RawMessage(`"open"`), nil
		}), socket.Read()))
	}})
	// The request library's own coalescing would share the reads before
	// they reach the service.
	c := sockettest.DialServer(t, ts, caller.WithoutCoalescing())
	ctx := sockettest.Context(t)
	value := func(name string, labels ...string) float64 {
		return promtest.Gather(t, reg).Value(name, append([]string{"service", "metered"}, labels...)...)
	}

	if _, err := c.Request(ctx, "ECHO", "1", json.RawMessage(`{"text":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Request(ctx, "BOOM", "", nil)
	sockettest.WantCode(t, err, socket.CodeInternal)
	_, err = c.Request(ctx, "NO_SUCH_ACTION", "", nil)
	sockettest.WantCode(t, err, socket.CodeNotFound)
	for _, w := range []struct {
		action, code string
	}{{"ECHO", "OK"}, {"BOOM", "INTERNAL"}, {"unknown", "NOT_FOUND"}} {
		if got := value("streamgate_service_frames_total", "action", w.action, "code", w.code); got != 1 {
			t.Errorf("frames{action=%s,code=%s} = %v, want 1", w.action, w.code, got)
		}
	}
	if got := value("streamgate_service_handler_duration_seconds", "action", "ECHO"); got != 1 {
		t.Errorf("handler runs of ECHO = %v, want 1", got)
	}
	if got := value("streamgate_service_open_streams"); got != 1 {
		t.Errorf("open streams = %v, want 1", got)
	}

	// Two identical reads in flight: one handler run, one coalesced caller.
	results := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.Request(ctx, "GATE", "7", nil)
			results <- err
		}()
	}
	sockettest.Recv(t, started)
	sockettest.WaitJoined(t, 2, &flights)
	if got := value("streamgate_service_requests_in_flight"); got != 2 {
		t.Errorf("in flight with two parked reads = %v, want 2", got)
	}
	close(release)
	for range 2 {
		if err := sockettest.Recv(t, results); err != nil {
			t.Fatal(err)
		}
	}
	if got := value("streamgate_service_coalesced_total", "action", "GATE"); got != 1 {
		t.Errorf("coalesced GATE = %v, want 1", got)
	}
	if got := value("streamgate_service_handler_duration_seconds", "action", "GATE"); got != 1 {
		t.Errorf("handler runs of GATE = %v, want 1", got)
	}
	if got := value("streamgate_service_frames_total", "action", "GATE", "code", "OK"); got != 2 {
		t.Errorf("frames{GATE,OK} = %v, want 2", got)
	}
	if got := value("streamgate_service_requests_in_flight"); got != 0 {
		t.Errorf("in flight after the answers = %v, want 0", got)
	}
	// Every admitted frame was observed on its stream: ECHO, BOOM, GATE×2.
	if got := value("streamgate_service_stream_requests_in_flight"); got != 4 {
		t.Errorf("stream in-flight observations = %v, want 4", got)
	}

	// A refused key counts once per refused call.
	before := value("streamgate_service_auth_refusals_total")
	_, err = sockettest.RawConn(t, ts).Describe(sockettest.WithKey(ctx, "not-a-key"), nil)
	if err == nil {
		t.Fatal("Describe with an unknown key succeeded")
	}
	if got := value("streamgate_service_auth_refusals_total"); got != before+1 {
		t.Errorf("auth refusals = %v, want %v", got, before+1)
	}
}

func TestServerMetricsShareARegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	for _, name := range []string{"a", "b", "a"} {
		srv, err := socket.NewServer(socket.Config{Name: name}, socket.WithoutAuth(), socket.WithMetrics(reg))
		if err != nil {
			t.Fatalf("server %s: %v", name, err)
		}
		must(t, srv.Handle("PING", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) { return nil, nil })))
	}
	// A registry already holding a different metric of the same name is
	// refused with a clear error.
	bad := prometheus.NewRegistry()
	bad.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "streamgate_service_open_streams", Help: "other", ConstLabels: prometheus.Labels{"zone": "x"}}))
	if _, err := socket.NewServer(socket.Config{Name: "c"}, socket.WithoutAuth(), socket.WithMetrics(bad)); err == nil {
		t.Fatal("NewServer registered into a registry with a clashing metric")
	}
}
