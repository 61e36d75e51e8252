package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/internal/blackhole"
	"github.com/streamgate/streamgate/services/socket"
)

// blackholeYAML routes a shop whose cache and Idempotency-Key store use
// the Redis at ${REDIS}.
const blackholeYAML = `
redis: ${REDIS}
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
  jwt:
    - {issuer: test, audience: streamgate, hs256_secret_env: JWT_SECRET}
services:
  shop: {target: "${ADDR_shop}", key_env: SERVICE_KEY, timeout: 5s}
versions:
  v1:
    resources:
      items: {service: shop, crud: [get], access: anonymous, cache_ttl: 5s, visibility: public}
      users: {service: shop, crud: [create]}
      orders:
        service: shop
        crud: [get]
        actions:
          - name: pay
            idempotency: required
            pipeline:
              - {as: charge, action: CHARGE, id: "${path.id}", body: {card: "${body.card}"}}
`

// With the Redis of its cache and Idempotency-Key store black-holed, the
// gateway still answers at once: reads from the service (X-Cache:
// unavailable), writes without waiting on the cache's invalidation, keyed
// pays refused with 503 and Retry-After; /readyz tells what is down.
func TestRedisBlackholed(t *testing.T) {
	t.Parallel()
	redisURL := "redis://" + blackhole.Listen(t) + "/0"
	shop := startService(t, "shop", map[string]handlerFunc{
		"GET_ITEM": func(_ context.Context, r *socket.Request) (any, error) {
			return map[string]any{"id": r.ResourceID}, nil
		},
		"CREATE_USER": func(context.Context, *socket.Request) (any, error) { return map[string]any{"id": "u1"}, nil },
		"GET_ORDER": func(_ context.Context, r *socket.Request) (any, error) {
			return map[string]any{"id": r.ResourceID}, nil
		},
		"CHARGE": func(context.Context, *socket.Request) (any, error) { return map[string]any{"id": "ch-1"}, nil },
	}, "GET_ITEM", "GET_ORDER")
	yaml := strings.ReplaceAll(blackholeYAML, "${REDIS}", redisURL)
	gw := runGateway(t, yaml, map[string]*fakeService{"shop": shop}, gateway.RunOptions{})
	base := "http://" + gw.addrs.HTTP
	client := &http.Client{Timeout: 10 * time.Second} // the unchanged gateway took 40 s for a write

	// answered is what send keeps of an answer (its body is read and closed).
	type answered struct {
		StatusCode int
		Header     http.Header
	}
	send := func(method, path, body string, header ...string) (answered, time.Duration) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		start := time.Now()
		resp, err := client.Do(req)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s %s: no answer after %v: %v", method, path, took, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return answered{resp.StatusCode, resp.Header}, took
	}

	// Reads: the service answers, at once. The first one finds the black
	// hole (one Redis deadline); the others do not wait on it again.
	var slowest time.Duration
	for i := range 10 {
		resp, took := send("GET", "/v1/items/book", "")
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "unavailable" {
			t.Fatalf("read %d: %d X-Cache %q after %v, want 200 unavailable", i, resp.StatusCode, resp.Header.Get("X-Cache"), took)
		}
		slowest = max(slowest, took)
	}
	if slowest > time.Second {
		t.Errorf("the slowest read took %v, want well under a second", slowest)
	}
	t.Logf("10 reads: 200 X-Cache: unavailable, slowest %v", slowest)

	// A write is answered when the service answers, not when the cache's
	// invalidation gives up.
	resp, took := send("POST", "/v1/users", `{"name":"u"}`, "X-API-Key", adminKey)
	if resp.StatusCode != 201 || took > time.Second {
		t.Errorf("write: %d after %v, want 201 within a second", resp.StatusCode, took)
	}
	t.Logf("write: %d after %v", resp.StatusCode, took)

	// A keyed pay cannot take its lease: 503 with Retry-After, within 2 s,
	// and nothing charged.
	resp, took = send("POST", "/v1/orders/7/pay", `{"card":"4242"}`, "X-API-Key", adminKey, "Idempotency-Key", "k-1")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || took > 2*time.Second {
		t.Errorf("pay: %d Retry-After %q after %v, want 503 with Retry-After within 2s", resp.StatusCode, resp.Header.Get("Retry-After"), took)
	}
	if n := shop.count("CHARGE"); n != 0 {
		t.Errorf("CHARGE ran %d times without a lease", n)
	}
	t.Logf("pay: %d Retry-After %s after %v", resp.StatusCode, resp.Header.Get("Retry-After"), took)

	// /readyz reports both uses of Redis as unavailable, and stays 200:
	// the services are ready and reads and plain writes are served.
	rr, err := client.Get("http://" + gw.addrs.Admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Body.Close()
	var env struct {
		Result struct {
			Status           string `json:"status"`
			Cache            string `json:"cache"`
			IdempotencyStore string `json:"idempotency_store"`
		} `json:"result"`
	}
	if err := json.NewDecoder(rr.Body).Decode(&env); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if rr.StatusCode != 200 || env.Result.Status != "degraded" || env.Result.Cache != "unavailable" || env.Result.IdempotencyStore != "unavailable" {
		t.Errorf("/readyz: %d %+v, want 200 degraded with cache and idempotency_store unavailable", rr.StatusCode, env.Result)
	}
}

// With Redis answering, /readyz says so for both of its uses.
func TestReadyzReportsRedis(t *testing.T) {
	url := os.Getenv("STREAMGATE_TEST_REDIS")
	if url == "" {
		t.Skip("STREAMGATE_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the Redis tests")
	}
	t.Parallel()
	shop := startService(t, "shop", map[string]handlerFunc{}, "GET_ITEM")
	gw := runGateway(t, strings.ReplaceAll(blackholeYAML, "${REDIS}", url), map[string]*fakeService{"shop": shop}, gateway.RunOptions{})
	// The service's stream is dialled in the background: wait for it.
	// A ping that outlasts its call deadline on a starved machine reads
	// as unavailable (200 degraded) for that probe: ask again until the
	// deadline.
	ready := func(code int, b []byte) bool {
		return code == 200 && strings.Contains(string(b), `"status":"ready"`) && strings.Contains(string(b), `"cache":"ok"`) && strings.Contains(string(b), `"idempotency_store":"ok"`)
	}
	var resp *http.Response
	var b []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if resp, err = http.Get("http://" + gw.addrs.Admin + "/readyz"); err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if ready(resp.StatusCode, b) || time.Now().After(deadline) {
			break
		}
		<-time.After(10 * time.Millisecond)
	}
	if !ready(resp.StatusCode, b) {
		t.Errorf("/readyz: %d %s, want 200 ready with cache and idempotency_store ok", resp.StatusCode, b)
	}
}
