package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/natsserve"
)

// natsYAML routes notes to a service on NATS at ${NATS}, named ${NOTES}
// there (a name of the test's own on a shared server); ghost is on NATS
// too, with no instance serving it.
const natsYAML = `
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
services:
  notes: {transport: nats, target: "${NOTES}", nats_url: "${NATS}", key_env: ${KEY_ENV}, timeout: 5s}
  ghost: {transport: nats, nats_url: "${NATS}", key_env: SERVICE_KEY}
versions:
  v1:
    resources:
      notes:
        service: notes
        crud: [get, create]
        actions:
          - {name: slow, method: GET, action: SLOW, timeout: 300ms}
      ghosts:
        service: ghost
        crud: [get]
`

// startNATSNotes serves the notes service over NATS at url until the
// test ends; its CREATE_NOTE stores what each idempotency key created and
// marks a second run with the same key replayed.
func startNATSNotes(t *testing.T, url, name string) *fakeService {
	t.Helper()
	var mu sync.Mutex // guards created, byKey
	created := 0
	byKey := map[string]any{}
	srv, f := newService(t, name, map[string]handlerFunc{
		"GET_NOTE": func(_ context.Context, r *socket.Request) (any, error) {
			return map[string]any{"id": r.ResourceID, "text": "hello"}, nil
		},
		"CREATE_NOTE": func(ctx context.Context, r *socket.Request) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			key := socket.MetaFrom(ctx).IdempotencyKey
			if prev, ok := byKey[key]; ok && key != "" {
				socket.MarkReplayed(ctx)
				return prev, nil
			}
			created++
			res := map[string]any{"id": created, "body": string(r.Body)}
			byKey[key] = res
			return res, nil
		},
		"SLOW": func(ctx context.Context, _ *socket.Request) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}, "GET_NOTE", "SLOW")
	nc := natstest.Connect(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, natsserve.Listen(nc, nil)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	natstest.WaitService(t, nc, name, 1, 3)
	return f
}

// natsGateway serves natsYAML with the gateway presenting the key in
// keyEnv to the services.
func natsGateway(t *testing.T, url, name, keyEnv string) *httptest.Server {
	t.Helper()
	yaml := strings.NewReplacer("${NATS}", url, "${NOTES}", name, "${KEY_ENV}", keyEnv).Replace(natsYAML)
	_, ts := startGateway(t, yaml, nil)
	return ts
}

func TestRESTOverNATS(t *testing.T) {
	url := natstest.Embedded(t)
	startNATSNotes(t, url, "notes")
	ts := natsGateway(t, url, "notes", "SERVICE_KEY")

	r := do(t, ts, "GET", "/v1/notes/n1", "", bearer(adminKey)...)
	if r.Status != http.StatusOK || resultMap(t, r)["id"] != "n1" {
		t.Fatalf("GET over NATS: %d %s", r.Status, r.Raw)
	}

	idem := append(bearer(adminKey), "Idempotency-Key", "create-1")
	first := do(t, ts, "POST", "/v1/notes", `{"text":"a"}`, idem...)
	if first.Status/100 != 2 {
		t.Fatalf("POST over NATS: %d %s", first.Status, first.Raw)
	}
	again := do(t, ts, "POST", "/v1/notes", `{"text":"a"}`, idem...)
	if again.Status != first.Status || string(again.Env.Result) != string(first.Env.Result) {
		t.Fatalf("the same POST again: %d %s; want the first answer %d %s", again.Status, again.Raw, first.Status, first.Raw)
	}
	if id := resultMap(t, again)["id"]; id != float64(1) {
		t.Errorf("the replayed POST created note %v; want note 1 only", id)
	}

	start := time.Now()
	r = do(t, ts, "GET", "/v1/notes/n1/slow", "", bearer(adminKey)...)
	if r.Status != http.StatusGatewayTimeout || r.Env.Error.Code != socket.CodeDeadlineExceeded {
		t.Errorf("a 300ms route to an action that waits: %d %s; want 504 DEADLINE_EXCEEDED", r.Status, r.Raw)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a 300ms route took %v", took)
	}

	start = time.Now()
	r = do(t, ts, "GET", "/v1/ghosts/g1", "", bearer(adminKey)...)
	if r.Status != http.StatusServiceUnavailable || r.Env.Error.Code != socket.CodeUnavailable {
		t.Errorf("a service on NATS with no instance: %d %s; want 503 UNAVAILABLE", r.Status, r.Raw)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("no responders took %v to answer", took)
	}
}

func TestNATSRefusesABadServiceKey(t *testing.T) {
	url := natstest.Embedded(t)
	notes := startNATSNotes(t, url, "notes")
	ts := natsGateway(t, url, "notes", "ALICE_KEY")
	r := do(t, ts, "GET", "/v1/notes/n1", "", bearer(adminKey)...)
	// Not 401: the client's key is fine, the gateway's is not; as when a
	// stream cannot open, the service has no instance for the gateway.
	if r.Status != http.StatusServiceUnavailable || r.Env.Error.Code != socket.CodeUnavailable || strings.Contains(r.Raw, "key") {
		t.Fatalf("GET with the wrong service key: %d %s; want 503 UNAVAILABLE, no word of keys", r.Status, r.Raw)
	}
	if n := notes.count("GET_NOTE"); n != 0 {
		t.Errorf("GET_NOTE ran %d times with the wrong key", n)
	}
}

func TestRESTOverExternalNATS(t *testing.T) {
	url := natstest.External(t)
	name := natstest.UniqueName("notes")
	startNATSNotes(t, url, name)
	ts := natsGateway(t, url, name, "SERVICE_KEY")
	if r := do(t, ts, "GET", "/v1/notes/n1", "", bearer(adminKey)...); r.Status != http.StatusOK {
		t.Fatalf("GET over the CI's NATS: %d %s", r.Status, r.Raw)
	}
}

// A plaintext NATS server off loopback is refused at start, as a plaintext
// target is, without its password in the message.
func TestPlaintextNATSRefused(t *testing.T) {
	yaml := strings.NewReplacer("${NATS}", "nats://gw:hunter2@nats.example:4222", "${NOTES}", "notes", "${KEY_ENV}", "SERVICE_KEY").Replace(natsYAML)
	cfg, err := config.Parse("gateway.yaml", []byte(yaml), func(k string) string { return testEnv[k] })
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(cfg)
	if err == nil || !strings.Contains(err.Error(), "in plaintext at nats://gw:xxxxx@nats.example:4222 (not loopback): use a tls:// nats_url") {
		t.Fatalf("err = %v; want the plaintext NATS link refused", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the refusal repeats the password: %v", err)
	}
}
