package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/idempotency"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// idemYAML routes a shop whose pay pipeline requires Idempotency-Key.
const idemYAML = `
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
    - {name: alice, secret_env: ALICE_KEY, subject: alice}
  jwt:
    - {issuer: test, audience: streamgate, hs256_secret_env: JWT_SECRET}
services:
  shop: {target: "${ADDR_shop}", key_env: SERVICE_KEY, timeout: 5s}
versions:
  v1:
    resources:
      orders:
        service: shop
        crud: [get, create]
        actions:
          - name: pay
            idempotency: required
            pipeline:
              - {as: charge, action: CHARGE, id: "${path.id}", body: {card: "${body.card}"}}
              - {as: paid, action: MARK_PAID, id: "${path.id}", body: {payment: "${charge.id}"}}
          - {name: note, action: NOTE}
          - {name: raw, action: NOTE, idempotency: "off"}
          - {name: slow, action: SLOW, timeout: 300ms, idempotency: required}
  v2:
    extends: v1
`

// shop is the stub service behind idemYAML. Its CHARGE and SLOW
// behaviours are the test's; it records the idempotency key each action
// saw.
type shop struct {
	*fakeService
	mu     sync.Mutex // guards keys, charge, slow
	keys   map[string][]string
	charge func(ctx context.Context, n int) (any, error) // nil: succeed
	slow   func(ctx context.Context, n int) (any, error)
}

func (s *shop) seen(action string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.keys[action]...)
}

func (s *shop) setCharge(fn func(ctx context.Context, n int) (any, error)) {
	s.mu.Lock()
	s.charge = fn
	s.mu.Unlock()
}

func startShop(t testing.TB) *shop {
	s := &shop{keys: map[string][]string{}}
	record := func(ctx context.Context, action string) int {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.keys[action] = append(s.keys[action], socket.MetaFrom(ctx).IdempotencyKey)
		return len(s.keys[action])
	}
	s.fakeService = startService(t, "shop", map[string]handlerFunc{
		"GET_ORDER": func(_ context.Context, r *socket.Request) (any, error) {
			return map[string]any{"id": r.ResourceID}, nil
		},
		"CREATE_ORDER": func(ctx context.Context, _ *socket.Request) (any, error) {
			return map[string]any{"id": fmt.Sprintf("o-%d", record(ctx, "CREATE_ORDER"))}, nil
		},
		"CHARGE": func(ctx context.Context, r *socket.Request) (any, error) {
			n := record(ctx, "CHARGE")
			s.mu.Lock()
			fn := s.charge
			s.mu.Unlock()
			if fn != nil {
				return fn(ctx, n)
			}
			return map[string]any{"id": fmt.Sprintf("ch-%d", n), "order": r.ResourceID}, nil
		},
		"MARK_PAID": func(ctx context.Context, r *socket.Request) (any, error) {
			n := record(ctx, "MARK_PAID")
			return map[string]any{"order": r.ResourceID, "payment": r.Body, "run": n}, nil
		},
		"NOTE": func(ctx context.Context, _ *socket.Request) (any, error) {
			return map[string]any{"run": record(ctx, "NOTE")}, nil
		},
		"SLOW": func(ctx context.Context, _ *socket.Request) (any, error) {
			n := record(ctx, "SLOW")
			s.mu.Lock()
			fn := s.slow
			s.mu.Unlock()
			if fn != nil {
				return fn(ctx, n)
			}
			return map[string]any{"run": n}, nil
		},
	}, "GET_ORDER")
	return s
}

// idemGateway serves idemYAML (with extra top-level YAML) in front of a
// new shop.
func idemGateway(t testing.TB, s *shop, extra string, opts ...gateway.Option) (*gateway.Gateway, *httptest.Server) {
	t.Helper()
	cfg := parseConfig(t, extra+idemYAML, map[string]*fakeService{"shop": s.fakeService})
	g, err := gateway.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g, serveHTTP(t, g)
}

// newKey returns a key no other test run uses (the Redis tests share a
// server).
func newKey(t testing.TB) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return t.Name() + "-" + hex.EncodeToString(b[:])
}

func idem(key string, h ...string) []string { return append([]string{"Idempotency-Key", key}, h...) }

func wantError(t *testing.T, r response, status int, code status.Code, reason string) {
	t.Helper()
	if r.Status != status || r.Env.Error == nil || r.Env.Error.Code != code || (reason != "" && r.Env.Error.Details[socket.DetailReason] != reason) {
		t.Fatalf("got %d %s, want %d %s (reason %s)", r.Status, r.Raw, status, code, reason)
	}
}

func TestIdempotencyReplaysTheFirstAnswer(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	_, ts := idemGateway(t, s, "")
	key := newKey(t)
	first := do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(key)...)...)
	if first.Status != 200 || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v %s", first.Status, first.Header, first.Raw)
	}
	// The same request again, its body spelt differently: the first answer,
	// byte for byte, without running anything.
	again := do(t, ts, "POST", "/v1/orders/7/pay", ` { "card" : "4242" }`, append(bearer(aliceKey), idem(key)...)...)
	if again.Status != 200 || again.Raw != first.Raw || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %v %s, want the first answer %s replayed", again.Status, again.Header, again.Raw, first.Raw)
	}
	if n := len(s.seen("CHARGE")); n != 1 {
		t.Fatalf("CHARGE ran %d times", n)
	}
	// A create replays its 201 and Location.
	c1 := do(t, ts, "POST", "/v1/orders", `{}`, append(bearer(aliceKey), idem(key)...)...)
	c2 := do(t, ts, "POST", "/v1/orders", `{}`, append(bearer(aliceKey), idem(key)...)...)
	if c1.Status != 201 || c2.Status != 201 || c1.Raw != c2.Raw || c2.Header.Get("Location") != c1.Header.Get("Location") || c1.Header.Get("Location") == "" ||
		c2.Header.Get("Idempotent-Replayed") != "true" || len(s.seen("CREATE_ORDER")) != 1 {
		t.Fatalf("create: %d %s %v / %d %s %v", c1.Status, c1.Raw, c1.Header, c2.Status, c2.Raw, c2.Header)
	}
	// A definite error is an answer too.
	s.setCharge(func(context.Context, int) (any, error) {
		return nil, socket.Errorf(socket.CodeFailedPrecondition, "card declined").WithDetails(map[string]any{socket.DetailReason: "card_declined"})
	})
	key2 := newKey(t)
	d1 := do(t, ts, "POST", "/v1/orders/8/pay", `{"card":"0002"}`, append(bearer(aliceKey), idem(key2)...)...)
	d2 := do(t, ts, "POST", "/v1/orders/8/pay", `{"card":"0002"}`, append(bearer(aliceKey), idem(key2)...)...)
	if d1.Status != 402 || d2.Raw != d1.Raw || d2.Header.Get("Idempotent-Replayed") != "true" || len(s.seen("CHARGE")) != 2 {
		t.Fatalf("declined: %d %s / %d %s", d1.Status, d1.Raw, d2.Status, d2.Raw)
	}
}

func TestIdempotencyKeyReusedForAnotherRequest(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	_, ts := idemGateway(t, s, "")
	key := newKey(t)
	if r := do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(key)...)...); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	for _, tc := range []struct{ name, path, body string }{
		{"another body", "/v1/orders/7/pay", `{"card":"5555"}`},
		{"another order", "/v1/orders/8/pay", `{"card":"4242"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, ts, "POST", tc.path, tc.body, append(bearer(aliceKey), idem(key)...)...)
			wantError(t, r, 422, socket.CodeInvalidArgument, "idempotency_key_reused")
		})
	}
	if n := len(s.seen("CHARGE")); n != 1 {
		t.Fatalf("CHARGE ran %d times", n)
	}
}

func TestIdempotencyKeyChecked(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	store := idempotency.NewMemory(100, 1<<20)
	t.Cleanup(store.Close)
	g, ts := idemGateway(t, s, "", gateway.WithIdempotencyStore(store))
	c := grpcClient(t, g)
	r := do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, bearer(aliceKey)...)
	wantError(t, r, 400, socket.CodeInvalidArgument, "idempotency_key_required")

	for _, tc := range []struct{ name, key string }{
		{"256 bytes", strings.Repeat("k", 256)},
		{"60,000 bytes", strings.Repeat("k", 60_000)},
		{"a tab", "a\tb"},
		{"not ASCII", "clé"},
		{"an empty quoted string", `""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(tc.key)...)...)
			wantError(t, r, 400, socket.CodeInvalidArgument, "invalid_idempotency_key")
			// On a route where a key is optional too.
			r = do(t, ts, "POST", "/v1/orders/7/note", `{}`, append(bearer(aliceKey), idem(tc.key)...)...)
			wantError(t, r, 400, socket.CodeInvalidArgument, "invalid_idempotency_key")
		})
	}
	// Control characters cannot cross HTTP; they can cross gRPC.
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+aliceKey)
	inv, err := c.Invoke(ctx, &gatewayv1.InvokeRequest{Version: "v1", Resource: "orders", Id: "7", Action: "pay", IdempotencyKey: "a\x00b",
		Payload: &gatewayv1.InvokeRequest_BodyRaw{BodyRaw: []byte(`{"card":"4242"}`)}})
	if err != nil || inv.GetHttpStatus() != 400 || inv.GetError().GetDetails().GetFields()[socket.DetailReason].GetStringValue() != "invalid_idempotency_key" {
		t.Fatalf("gRPC with a NUL in the key: %v %v", inv, err)
	}
	if leases, answers, _ := store.Len(); leases != 0 || answers != 0 || len(s.seen("CHARGE")) != 0 {
		t.Fatalf("after refused keys: %d leases, %d answers, %d charges", leases, answers, len(s.seen("CHARGE")))
	}
	// 255 printable characters, spaces inside, quoted as the draft spells it.
	long := `"` + strings.Repeat("k", 250) + ` a\"b"`
	if r := do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(long)...)...); r.Status != 200 {
		t.Fatalf("255-character key: %d %s", r.Status, r.Raw)
	}
	// A key on a route where idempotency is off is only forwarded.
	r = do(t, ts, "POST", "/v1/orders/7/raw", `{}`, append(bearer(aliceKey), idem("raw-key")...)...)
	r2 := do(t, ts, "POST", "/v1/orders/7/raw", `{}`, append(bearer(aliceKey), idem("raw-key")...)...)
	if r.Status != 200 || r2.Raw == r.Raw || strings.Join(s.seen("NOTE"), ",") != "raw-key,raw-key" {
		t.Fatalf("off route: %s / %s, service saw %q", r.Raw, r2.Raw, s.seen("NOTE"))
	}
}

func TestIdempotencyConcurrentRequestsRunOnce(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	_, ts := idemGateway(t, s, "")
	started, release := make(chan struct{}), make(chan struct{})
	s.setCharge(func(_ context.Context, n int) (any, error) {
		close(started)
		<-release
		return map[string]any{"id": fmt.Sprintf("ch-%d", n)}, nil
	})
	key := newKey(t)
	const n = 50
	answers := make(chan response, n)
	send := func() {
		answers <- do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(key)...)...)
	}
	go send()
	<-started // the first holds the lease and is inside CHARGE
	for range n - 1 {
		go send()
	}
	for range n - 1 {
		r := <-answers
		wantError(t, r, 409, socket.CodeConflict, "idempotency_key_in_use")
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("409 without Retry-After: %v", r.Header)
		}
	}
	close(release)
	first := <-answers
	if first.Status != 200 {
		t.Fatalf("the request that ran: %d %s", first.Status, first.Raw)
	}
	if r := do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(key)...)...); r.Raw != first.Raw || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("after: %s", r.Raw)
	}
	if c, m := len(s.seen("CHARGE")), len(s.seen("MARK_PAID")); c != 1 || m != 1 {
		t.Fatalf("CHARGE ran %d times, MARK_PAID %d", c, m)
	}
}

func TestIdempotencyUnknownOutcomeReleasesTheLease(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		path   string
		action string
		status int
		fail   func(s *shop)
	}{
		{"service unavailable", "/v1/orders/7/pay", "CHARGE", 503, func(s *shop) {
			s.setCharge(func(_ context.Context, n int) (any, error) {
				if n == 1 {
					return nil, socket.Errorf(socket.CodeUnavailable, "provider down").WithDetails(map[string]any{"retry_after_ms": 1500})
				}
				return map[string]any{"id": "ch-1"}, nil
			})
		}},
		{"service deadline", "/v1/orders/7/pay", "CHARGE", 504, func(s *shop) {
			s.setCharge(func(_ context.Context, n int) (any, error) {
				if n == 1 {
					return nil, fail(socket.CodeDeadlineExceeded, "provider timed out")
				}
				return map[string]any{"id": "ch-1"}, nil
			})
		}},
		// A service still running the step a lost answer left behind says
		// so with 409 *_in_progress: try again, not a verdict to keep.
		{"service still running the step", "/v1/orders/7/pay", "CHARGE", 409, func(s *shop) {
			s.setCharge(func(_ context.Context, n int) (any, error) {
				if n == 1 {
					return nil, socket.Errorf(socket.CodeConflict, "a request with this key is still running").WithDetails(map[string]any{"reason": "idempotency_key_in_use"})
				}
				return map[string]any{"id": "ch-1"}, nil
			})
		}},
		{"another purchase in progress", "/v1/orders/7/pay", "CHARGE", 409, func(s *shop) {
			s.setCharge(func(_ context.Context, n int) (any, error) {
				if n == 1 {
					return nil, socket.Errorf(socket.CodeConflict, "a purchase is in progress").WithDetails(map[string]any{"reason": "purchase_in_progress"})
				}
				return map[string]any{"id": "ch-1"}, nil
			})
		}},
		{"route times out", "/v1/orders/7/slow", "SLOW", 504, func(s *shop) {
			s.mu.Lock()
			s.slow = func(ctx context.Context, n int) (any, error) {
				if n == 1 {
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return map[string]any{"run": n}, nil
			}
			s.mu.Unlock()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startShop(t)
			_, ts := idemGateway(t, s, "")
			tc.fail(s)
			key := newKey(t)
			r := do(t, ts, "POST", tc.path, `{"card":"4242"}`, append(bearer(aliceKey), idem(key)...)...)
			if r.Status != tc.status {
				t.Fatalf("first: %d %s", r.Status, r.Raw)
			}
			if tc.status == 503 && r.Header.Get("Retry-After") != "2" {
				t.Fatalf("503 Retry-After %q, want 2 (1500ms rounded up)", r.Header.Get("Retry-After"))
			}
			r = do(t, ts, "POST", tc.path, `{"card":"4242"}`, append(bearer(aliceKey), idem(key)...)...)
			if r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("retry: %d %s", r.Status, r.Raw)
			}
			keys := s.seen(tc.action)
			if len(keys) != 2 || keys[0] != keys[1] || keys[0] == "" || strings.Contains(keys[0], key) {
				t.Fatalf("%s saw keys %q: want the same derived key twice", tc.action, keys)
			}
		})
	}
}

func TestIdempotencyScopes(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	_, ts := idemGateway(t, s, "")
	bob := token(t, "bob", nil, time.Hour)
	key := "the-same-key"
	for _, c := range []struct {
		path string
		who  []string
	}{
		{"/v1/orders/7/pay", bearer(aliceKey)},
		{"/v1/orders/7/pay", bearer(bob)},
		{"/v2/orders/7/pay", bearer(aliceKey)},
	} {
		if r := do(t, ts, "POST", c.path, `{"card":"4242"}`, append(c.who, idem(key)...)...); r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("%s: %d %v %s", c.path, r.Status, r.Header, r.Raw)
		}
	}
	keys := s.seen("CHARGE")
	if len(keys) != 3 || keys[0] == keys[1] || keys[0] == keys[2] || keys[1] == keys[2] {
		t.Fatalf("CHARGE saw keys %q: two principals or versions shared a derived key", keys)
	}
	// Each step has its own key, and a single write gets one too.
	if paid := s.seen("MARK_PAID"); paid[0] == keys[0] || !strings.HasSuffix(paid[0], ":paid") || !strings.HasSuffix(keys[0], ":charge") {
		t.Fatalf("step keys %q %q", keys[0], paid[0])
	}
	if r := do(t, ts, "POST", "/v1/orders/7/note", `{}`, append(bearer(aliceKey), idem(key)...)...); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	if notes := s.seen("NOTE"); len(notes) != 1 || !strings.HasSuffix(notes[0], ":NOTE") || strings.Contains(notes[0], key) {
		t.Fatalf("NOTE saw %q", notes)
	}
}

func TestIdempotencyOverGRPC(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	g, ts := idemGateway(t, s, "")
	c := grpcClient(t, g)
	key := newKey(t)
	req := &gatewayv1.InvokeRequest{Version: "v1", Resource: "orders", Id: "7", Action: "pay",
		Payload: &gatewayv1.InvokeRequest_BodyRaw{BodyRaw: []byte(`{"card":"4242"}`)}}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+aliceKey)
	if r, err := c.Invoke(ctx, req); err != nil || r.GetHttpStatus() != 400 {
		t.Fatalf("without a key: %v %v", r, err)
	}
	// The key in metadata, then in the request: one scope with REST.
	var header metadata.MD
	first, err := c.Invoke(metadata.AppendToOutgoingContext(ctx, "idempotency-key", key), req, grpc.Header(&header))
	if err != nil || first.GetHttpStatus() != 200 || len(header.Get("idempotent-replayed")) != 0 {
		t.Fatalf("first: %v %v %v", first, err, header)
	}
	req.IdempotencyKey = key
	again, err := c.Invoke(ctx, req, grpc.Header(&header))
	if err != nil || string(again.GetResultRaw()) != string(first.GetResultRaw()) || strings.Join(header.Get("idempotent-replayed"), "") != "true" {
		t.Fatalf("retry: %v %v %v", again, err, header)
	}
	rest := do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(key)...)...)
	if rest.Header.Get("Idempotent-Replayed") != "true" || string(rest.Env.Result) != string(first.GetResultRaw()) {
		t.Fatalf("REST after gRPC: %v %s", rest.Header, rest.Raw)
	}
	// The REST binding of Invoke.
	b := do(t, ts, "POST", "/gateway/v1/invoke", `{"version":"v1","resource":"orders","id":"7","action":"pay","body_raw":"eyJjYXJkIjoiNDI0MiJ9"}`,
		append(bearer(aliceKey), idem(key)...)...)
	if b.Status != 200 || b.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("REST binding: %d %v %s", b.Status, b.Header, b.Raw)
	}
	if n := len(s.seen("CHARGE")); n != 1 {
		t.Fatalf("CHARGE ran %d times", n)
	}
}

func TestIdempotencyStoreUnavailable(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	// Nothing listens on port 1: every store call fails.
	_, ts := idemGateway(t, s, "redis: redis://127.0.0.1:1/0\n")
	r := do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(newKey(t))...)...)
	wantError(t, r, 503, socket.CodeUnavailable, "")
	if strings.Contains(r.Raw, "127.0.0.1") || r.Header.Get("Retry-After") != "1" || len(s.seen("CHARGE")) != 0 {
		t.Fatalf("store down: %v %s, %d charges", r.Header, r.Raw, len(s.seen("CHARGE")))
	}
	// Without a key, an optional route does not need the store.
	if r := do(t, ts, "POST", "/v1/orders/7/note", `{}`, bearer(aliceKey)...); r.Status != 200 {
		t.Fatalf("no key: %d %s", r.Status, r.Raw)
	}
}

func TestIdempotencyMemoryBound(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	store := idempotency.NewMemory(8, 1<<20)
	t.Cleanup(store.Close)
	_, ts := idemGateway(t, s, "", gateway.WithIdempotencyStore(store))
	for i := range 40 {
		if r := do(t, ts, "POST", "/v1/orders/7/note", `{}`, append(bearer(aliceKey), idem(fmt.Sprint("k", i))...)...); r.Status != 200 {
			t.Fatal(r.Raw)
		}
	}
	if leases, answers, _ := store.Len(); leases != 0 || answers > 8 {
		t.Fatalf("%d leases, %d answers: want at most 8", leases, answers)
	}
	// Bytes: answers of 2 KiB in a 16 KiB store.
	small := idempotency.NewMemory(1000, 16<<10)
	t.Cleanup(small.Close)
	for i := range 40 {
		id := idempotency.Scope{Key: fmt.Sprint(i)}.ID()
		b, err := small.Begin(context.Background(), id, "fp", time.Minute)
		if err != nil || b.Outcome != idempotency.Acquired {
			t.Fatal(b, err)
		}
		if err := small.Complete(context.Background(), id, b.Token, idempotency.Answer{Status: 200, Body: make([]byte, 2048)}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, answers, bytes := small.Len(); bytes > 16<<10 || answers > 8 {
		t.Fatalf("%d answers in %d bytes: want at most 16 KiB", answers, bytes)
	}
}

func TestIdempotencyAcrossGatewaysWithRedis(t *testing.T) {
	url := os.Getenv("STREAMGATE_TEST_REDIS")
	if url == "" {
		t.Skip("STREAMGATE_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the Redis tests")
	}
	t.Parallel()
	s := startShop(t)
	_, a := idemGateway(t, s, "redis: "+url+"\n")
	_, b := idemGateway(t, s, "redis: "+url+"\n")
	started, release := make(chan struct{}), make(chan struct{})
	s.setCharge(func(_ context.Context, n int) (any, error) {
		close(started)
		<-release
		return map[string]any{"id": fmt.Sprintf("ch-%d", n)}, nil
	})
	key := newKey(t)
	first := make(chan response, 1)
	go func() {
		first <- do(t, a, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(key)...)...)
	}()
	<-started
	r := do(t, b, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(key)...)...)
	wantError(t, r, 409, socket.CodeConflict, "idempotency_key_in_use")
	r = do(t, b, "POST", "/v1/orders/7/pay", `{"card":"9999"}`, append(bearer(aliceKey), idem(key)...)...)
	wantError(t, r, 422, socket.CodeInvalidArgument, "idempotency_key_reused")
	close(release)
	f := <-first
	if f.Status != 200 {
		t.Fatalf("first: %d %s", f.Status, f.Raw)
	}
	r = do(t, b, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(key)...)...)
	if r.Raw != f.Raw || r.Header.Get("Idempotent-Replayed") != "true" || len(s.seen("CHARGE")) != 1 {
		t.Fatalf("retry on the other gateway: %v %s", r.Header, r.Raw)
	}
	// An unknown outcome on one gateway, the retry on the other: it runs
	// again, with the same derived key.
	s.setCharge(func(_ context.Context, n int) (any, error) {
		if n == 2 {
			return nil, fail(socket.CodeUnavailable, "provider down")
		}
		return map[string]any{"id": fmt.Sprintf("ch-%d", n)}, nil
	})
	key2 := newKey(t)
	if r := do(t, a, "POST", "/v1/orders/8/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(key2)...)...); r.Status != 503 {
		t.Fatalf("first: %d %s", r.Status, r.Raw)
	}
	if r := do(t, b, "POST", "/v1/orders/8/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(key2)...)...); r.Status != 200 {
		t.Fatalf("retry: %d %s", r.Status, r.Raw)
	}
	if keys := s.seen("CHARGE"); len(keys) != 3 || keys[1] != keys[2] || keys[0] == keys[1] {
		t.Fatalf("CHARGE keys %q", keys)
	}
}

func TestListRoutesIsForAdmins(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	g, ts := idemGateway(t, s, "")
	c := grpcClient(t, g)
	alice := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+aliceKey)
	if _, err := c.ListRoutes(alice, &gatewayv1.ListRoutesRequest{Version: "v1"}); grpcstatus.Code(err) != codes.PermissionDenied {
		t.Fatalf("ListRoutes by a non-admin: %v", err)
	}
	if _, err := c.ListRoutes(context.Background(), &gatewayv1.ListRoutesRequest{Version: "v1"}); grpcstatus.Code(err) != codes.Unauthenticated {
		t.Fatalf("ListRoutes without credentials: %v", err)
	}
	admin := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminKey)
	if _, err := c.ListRoutes(admin, &gatewayv1.ListRoutesRequest{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	r := do(t, ts, "GET", "/gateway/v1/versions/v1/routes", "", bearer(aliceKey)...)
	wantError(t, r, 403, socket.CodePermissionDenied, "")
	if r := do(t, ts, "GET", "/gateway/v1/versions/v1/routes", "", bearer(adminKey)...); r.Status != 200 {
		t.Fatalf("admin: %d %s", r.Status, r.Raw)
	}
}

func TestIdempotencyClientGoneReleasesTheLease(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	store := idempotency.NewMemory(100, 1<<20)
	t.Cleanup(store.Close)
	_, ts := idemGateway(t, s, "", gateway.WithIdempotencyStore(store))
	inCharge := make(chan struct{})
	s.setCharge(func(ctx context.Context, n int) (any, error) {
		if n == 1 {
			close(inCharge)
			<-ctx.Done() // the gateway cancels the frame when the client leaves
			return nil, ctx.Err()
		}
		return map[string]any{"id": fmt.Sprintf("ch-%d", n)}, nil
	})
	key := newKey(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/orders/7/pay", strings.NewReader(`{"card":"4242"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+aliceKey)
	req.Header.Set("Idempotency-Key", key)
	gone := make(chan error, 1)
	go func() {
		resp, err := ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gone <- err
	}()
	<-inCharge
	cancel()
	if err := <-gone; err == nil {
		t.Fatal("the cancelled request got an answer")
	}
	// The gateway releases the lease once the run has ended: until then a
	// retry is told to come back.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(20 * time.Second)
	for {
		r := do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, append(bearer(aliceKey), idem(key)...)...)
		if r.Status == 200 {
			break
		}
		wantError(t, r, 409, socket.CodeConflict, "idempotency_key_in_use")
		if time.Now().After(end) {
			t.Fatal("the lease of a request whose client left was not released")
		}
		<-tick.C
	}
	if keys := s.seen("CHARGE"); len(keys) != 2 || keys[0] != keys[1] {
		t.Fatalf("CHARGE keys %q: want the same derived key twice", keys)
	}
}
