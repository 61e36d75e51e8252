package gateway_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

// TestExampleConfiguration runs the repository's example configuration
// against the example services, the way README's walk-through does.
func TestExampleConfiguration(t *testing.T) {
	t.Parallel()
	yaml, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{}
	for _, name := range []string{"echo", "notes"} {
		addrs[name] = runService(t, name)
	}
	text := strings.NewReplacer("127.0.0.1:9000", addrs["echo"], "127.0.0.1:9001", addrs["notes"]).Replace(string(yaml))
	env := map[string]string{"STREAMGATE_SERVICE_KEY": serviceKey, "STREAMGATE_ADMIN_KEY": adminKey, "STREAMGATE_JWT_SECRET": jwtSecret}
	cfg, err := config.Parse("example.yaml", []byte(text), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := serveHTTP(t, g)
	admin := []string{"X-API-Key", adminKey}
	created := do(t, ts, "POST", "/v1/notes", `{"text":"hello"}`, admin...)
	if created.Status != 201 || created.Header.Get("Location") != "/v1/notes/1" {
		t.Fatalf("create: %d %s", created.Status, created.Raw)
	}
	if r := do(t, ts, "GET", "/v1/notes/1", "", admin...); r.Status != 200 || resultMap(t, r)["owner"] != "admin" {
		t.Fatalf("get: %s", r.Raw)
	}
	if r := do(t, ts, "POST", "/v2/notes/1/copy-to-tag", "", admin...); r.Status != 400 || r.Env.Error.Details["reason"] != "idempotency_key_required" {
		t.Fatalf("pipeline without Idempotency-Key: %s", r.Raw)
	}
	copied := do(t, ts, "POST", "/v2/notes/1/copy-to-tag", "", append(admin, "Idempotency-Key", "copy-1")...)
	if copied.Status != 200 || resultMap(t, copied)["text"] != "hello (from note 1)" {
		t.Fatalf("pipeline: %s", copied.Raw)
	}
	if r := do(t, ts, "POST", "/v2/notes/1/copy-to-tag", "", append(admin, "Idempotency-Key", "copy-1")...); r.Raw != copied.Raw || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retried pipeline: %s", r.Raw)
	}
	if r := do(t, ts, "POST", "/v1/notes/1/copy-to-tag", "", admin...); r.Status != 404 {
		t.Fatalf("v1 has no copy-to-tag: %d", r.Status)
	}
	if r := do(t, ts, "POST", "/v1/echo/say", `{"text":"hi"}`); r.Status != 200 || resultMap(t, r)["principal"] != "anonymous" {
		t.Fatalf("anonymous echo: %s", r.Raw)
	}
	if r := do(t, ts, "GET", "/v1/tags", "", bearer(tokenFrom(t, "streamgate", "alice", nil, time.Hour))...); r.Status != 403 {
		t.Fatalf("tags without admin: %d", r.Status)
	}
}

// runService serves one of the example services on a free port with the
// gateway's key.
func runService(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run.Run(ctx, run.Options{Service: name, Listen: "127.0.0.1:0",
			Keys: []keyring.Key{{Name: "gateway", Secret: serviceKey, Delegate: true}}, Ready: func(a string) { addr <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-done:
		t.Fatal(err)
	}
	return ""
}

// TestRunServesAndShutsDown runs the binary's path: a config file and env,
// listeners, requests, a reload, graceful shutdown.
func TestRunServesAndShutsDown(t *testing.T) {
	_, svcs := newSystem(t)
	yaml := testYAML
	for name, s := range svcs {
		yaml = strings.ReplaceAll(yaml, "${ADDR_"+name+"}", s.Addr)
	}
	path := t.TempDir() + "/gateway.yaml"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range testEnv {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan gateway.Addrs, 1)
	reloads := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- gateway.Run(ctx, gateway.RunOptions{ConfigPath: path, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
			Reloads: reloads, Ready: func(a gateway.Addrs) { ready <- a }})
	}()
	var addrs gateway.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	get := func() int {
		req, _ := http.NewRequest("GET", "http://"+addrs.HTTP+"/v1/users/1", nil)
		req.Header.Set("X-API-Key", aliceKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != 200 {
		t.Fatalf("status %d", s)
	}
	reloads <- struct{}{}
	if s := get(); s != 200 {
		t.Fatalf("after reload: status %d", s)
	}
	conn, err := net.Dial("tcp", addrs.GRPC)
	if err != nil {
		t.Fatalf("gRPC listener: %v", err)
	}
	conn.Close()
	// Every service's stream is dialled in the background; /readyz says
	// 200 once all three are ready (only users answered a request yet).
	deadline := time.Now().Add(20 * time.Second)
	for _, path := range []string{"/healthz", "/readyz"} {
		for {
			resp, err := http.Get("http://" + addrs.Admin + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d", path, resp.StatusCode)
			}
			<-time.After(20 * time.Millisecond)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
}
