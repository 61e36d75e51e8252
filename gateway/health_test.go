package gateway_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/services/socket"
)

// healthYAML is one anonymous resource on one service.
const healthYAML = `
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
  jwt:
    - {issuer: test, audience: streamgate, hs256_secret_env: JWT_SECRET}
services:
  users: {target: "${ADDR_users}", key_env: SERVICE_KEY, timeout: 10s}
versions:
  v1:
    resources:
      users: {service: users, crud: [get], access: anonymous, cache_ttl: 0s}
`

// running is a gateway served by Run until the test stops it.
type running struct {
	addrs  gateway.Addrs
	cancel context.CancelFunc
	done   chan error
}

// runGateway serves yaml (with the services' addresses) through Run with
// an admin listener; the test stops it (stop) or cleanup does.
func runGateway(t *testing.T, yaml string, services map[string]*fakeService, o gateway.RunOptions) *running {
	t.Helper()
	for name, s := range services {
		yaml = strings.ReplaceAll(yaml, "${ADDR_"+name+"}", s.Addr)
	}
	o.ConfigPath = t.TempDir() + "/gateway.yaml"
	if err := os.WriteFile(o.ConfigPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	o.HTTPAddr, o.GRPCAddr, o.AdminAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	o.Env = func(k string) string { return testEnv[k] }
	ready := make(chan gateway.Addrs, 1)
	o.Ready = func(a gateway.Addrs) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- gateway.Run(ctx, o) }()
	select {
	case r.addrs = <-ready:
	case err := <-r.done:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop drains the gateway and waits for Run to return (once).
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err, ok := <-r.done; ok {
		close(r.done)
		if err != nil {
			t.Error(err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

// get answers GET url's status.
func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// healthCheck asks the gRPC health service about the whole server.
func healthCheck(t *testing.T, addr string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health check: %v", err)
	}
	return resp.GetStatus()
}

// waitServing waits until the gRPC health service says SERVING.
func waitServing(t *testing.T, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := w.Recv()
		if err != nil {
			t.Fatalf("the gateway never said SERVING: %v", err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
	}
}

// From the moment a drain starts, /readyz answers 503 and gRPC health
// NOT_SERVING, while requests in flight still finish and /healthz stays
// 200.
func TestReadyzIs503WhileDraining(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	users := startService(t, "users", map[string]handlerFunc{
		"GET_USER": func(ctx context.Context, r *socket.Request) (any, error) {
			if r.ResourceID == "slow" {
				close(entered)
				<-release
			}
			return map[string]any{"id": r.ResourceID}, nil
		},
	})
	logs := newLogCapture()
	gw := runGateway(t, healthYAML, map[string]*fakeService{"users": users}, gateway.RunOptions{Logger: logs.Logger()})
	admin := "http://" + gw.addrs.Admin

	if s := getStatus(t, "http://"+gw.addrs.HTTP+"/v1/users/1"); s != 200 {
		t.Fatalf("GET: %d", s)
	}
	if s := getStatus(t, admin+"/readyz"); s != 200 {
		t.Fatalf("/readyz before the drain: %d", s)
	}
	waitServing(t, gw.addrs.GRPC)

	inFlight := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + gw.addrs.HTTP + "/v1/users/slow")
		if err != nil {
			inFlight <- 0
			return
		}
		resp.Body.Close()
		inFlight <- resp.StatusCode
	}()
	<-entered
	draining := logs.seen("gateway draining")
	gw.cancel()
	select {
	case <-draining:
	case <-time.After(10 * time.Second):
		t.Fatal("no drain was logged")
	}
	if s := getStatus(t, admin+"/readyz"); s != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d, want 503", s)
	}
	if s := getStatus(t, admin+"/healthz"); s != 200 {
		t.Errorf("/healthz while draining: %d, want 200", s)
	}
	if s := healthCheck(t, gw.addrs.GRPC); s != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("gRPC health while draining: %v", s)
	}
	close(release)
	if s := <-inFlight; s != 200 {
		t.Errorf("the request in flight: %d, want 200", s)
	}
	gw.stop(t)
	if !strings.Contains(logs.String(), `"msg":"gateway drained"`) {
		t.Errorf("no drained line in %s", logs.String())
	}
}

// pprof is on the admin listener only when asked for.
func TestPprofOnlyWithTheFlag(t *testing.T) {
	users := startService(t, "users", map[string]handlerFunc{})
	for _, on := range []bool{false, true} {
		gw := runGateway(t, healthYAML, map[string]*fakeService{"users": users}, gateway.RunOptions{Pprof: on})
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		if s := getStatus(t, "http://"+gw.addrs.Admin+"/debug/pprof/"); s != want {
			t.Errorf("pprof %v: /debug/pprof/ %d, want %d", on, s, want)
		}
		if s := getStatus(t, "http://"+gw.addrs.HTTP+"/debug/pprof/"); s == http.StatusOK {
			t.Errorf("pprof %v: the REST listener serves /debug/pprof/", on)
		}
		gw.stop(t)
	}
}
