package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
)

// testYAML is the configuration the gateway tests run: three resources
// over two versions, a pipeline with a parallel group, keys and JWT.
const testYAML = `
http:
  max_body_bytes: 4096
  max_json_depth: 8
  cors:
    allowed_origins: ["https://app.example"]
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
    - {name: alice, secret_env: ALICE_KEY, subject: alice}
  jwt:
    - {issuer: test, audience: streamgate, hs256_secret_env: JWT_SECRET}
services:
  users: {target: "${ADDR_users}", key_env: SERVICE_KEY, timeout: 2s}
  orders: {target: "${ADDR_orders}", key_env: SERVICE_KEY}
  payments: {target: ["${ADDR_payments}"], key_env: SERVICE_KEY}
versions:
  v1:
    resources:
      users:
        service: users
        actions:
          - {name: check_purchasable, method: GET}
          - {name: search, on: collection}
          - {name: whoami, method: GET, on: collection, access: anonymous}
          - {name: slow, method: GET, timeout: 3s}
      orders:
        service: orders
        crud: [get, list, create]
        actions:
          - name: pay
            pipeline:
              - {as: order, action: GET_ORDER, id: "${path.id}"}
              - {service: payments, action: PAY, as: payment, body: {order_id: "${path.id}", amount_cents: "${order.total_cents}", card: "${body.card}", note: "order ${order.id} for ${caller.subject}"}}
      payments:
        service: payments
        crud: [get, list]
        access: {roles: [admin]}
  v2:
    extends: v1
    resources:
      orders:
        service: orders
        crud: [get]
        actions:
          - name: pay
            pipeline:
              - {as: order, action: GET_ORDER, id: "${path.id}"}
              - parallel:
                  - {service: users, action: CHECK_PURCHASABLE, id: "${order.user_id}", as: purchasable}
                  - {service: payments, action: CHECK_CARD, body: {card: "${body.card}"}, as: card}
              - {service: payments, action: PAY, as: payment, body: {order_id: "${path.id}", amount_cents: "${order.total_cents}", card: "${body.card}"}}
            result: payment
`

// testSystem is three fake services behind a gateway.
type testSystem struct {
	users, orders, payments *fakeService
	paid                    atomic.Int64
}

func newSystem(t testing.TB) (*testSystem, map[string]*fakeService) {
	s := &testSystem{}
	s.users = startService(t, "users", map[string]handlerFunc{
		"GET_USER": func(_ context.Context, r *socket.Request) (any, error) {
			if r.ResourceID == "404" {
				return nil, fail(socket.CodeNotFound, "no user %s", r.ResourceID)
			}
			return map[string]any{"id": r.ResourceID, "name": "Oska"}, nil
		},
		"LIST_USERS": func(_ context.Context, r *socket.Request) (any, error) { return map[string]any{"filter": r.Body}, nil },
		"CREATE_USER": func(_ context.Context, r *socket.Request) (any, error) {
			return map[string]any{"id": "u-9", "body": r.Body}, nil
		},
		"UPDATE_USER": func(_ context.Context, r *socket.Request) (any, error) {
			return map[string]any{"id": r.ResourceID, "body": r.Body}, nil
		},
		"DELETE_USER": func(_ context.Context, r *socket.Request) (any, error) {
			return map[string]any{"deleted": r.ResourceID}, nil
		},
		"CHECK_PURCHASABLE": func(_ context.Context, r *socket.Request) (any, error) {
			if r.ResourceID == "suspended" {
				return nil, fail(socket.CodeFailedPrecondition, "user %s is suspended", r.ResourceID)
			}
			return map[string]any{"purchasable": true}, nil
		},
		"SEARCH": func(_ context.Context, r *socket.Request) (any, error) { return map[string]any{"query": r.Body}, nil },
		"WHOAMI": func(ctx context.Context, _ *socket.Request) (any, error) { return socket.MetaFrom(ctx), nil },
		"SLOW": func(ctx context.Context, _ *socket.Request) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}, "GET_USER", "LIST_USERS")
	s.orders = startService(t, "orders", map[string]handlerFunc{
		"GET_ORDER": func(_ context.Context, r *socket.Request) (any, error) {
			if r.ResourceID == "missing" {
				return nil, fail(socket.CodeNotFound, "no order %s", r.ResourceID)
			}
			user := "u-1"
			if r.ResourceID == "7s" {
				user = "suspended"
			}
			return map[string]any{"id": r.ResourceID, "user_id": user, "total_cents": 1250}, nil
		},
		"LIST_ORDERS":  func(_ context.Context, r *socket.Request) (any, error) { return []any{}, nil },
		"CREATE_ORDER": func(_ context.Context, r *socket.Request) (any, error) { return map[string]any{"id": 42}, nil },
	}, "GET_ORDER")
	s.payments = startService(t, "payments", map[string]handlerFunc{
		"PAY": func(_ context.Context, r *socket.Request) (any, error) {
			var in struct {
				OrderID string      `json:"order_id"`
				Amount  json.Number `json:"amount_cents"`
				Card    string      `json:"card"`
				Note    string      `json:"note"`
			}
			if err := socket.DecodeBody(r.Body, &in); err != nil {
				return nil, err
			}
			if in.Card == "declined" {
				return nil, socket.Errorf(socket.CodeFailedPrecondition, "card declined").WithDetails(map[string]any{"reason": "card_declined"})
			}
			s.paid.Add(1)
			return map[string]any{"id": "p-1", "order_id": in.OrderID, "amount_cents": in.Amount, "note": in.Note}, nil
		},
		"CHECK_CARD": func(_ context.Context, r *socket.Request) (any, error) {
			var in struct {
				Card string `json:"card"`
			}
			_ = socket.DecodeBody(r.Body, &in)
			if in.Card == "stolen" {
				return nil, fail(socket.CodePermissionDenied, "card reported stolen")
			}
			return map[string]any{"ok": true}, nil
		},
		"GET_PAYMENT": func(_ context.Context, r *socket.Request) (any, error) {
			return map[string]any{"id": r.ResourceID}, nil
		},
		"LIST_PAYMENTS": func(_ context.Context, r *socket.Request) (any, error) { return []any{}, nil },
	}, "GET_PAYMENT")
	return s, map[string]*fakeService{"users": s.users, "orders": s.orders, "payments": s.payments}
}

func TestRouteForms(t *testing.T) {
	t.Parallel()
	sys, svcs := newSystem(t)
	_, ts := startGateway(t, testYAML, svcs)
	alice := bearer(aliceKey)
	cases := []struct {
		name, method, path, body string
		status                   int
		check                    func(t *testing.T, r response)
	}{
		{"get item", "GET", "/v1/users/1", "", 200, func(t *testing.T, r response) {
			if resultMap(t, r)["name"] != "Oska" {
				t.Fatal(r.Raw)
			}
		}},
		{"list with query as body", "GET", "/v1/users?status=active&page_size=2&tag=a&tag=b", "", 200, func(t *testing.T, r response) {
			var got struct {
				Filter map[string]any `json:"filter"`
			}
			_ = json.Unmarshal(r.Env.Result, &got)
			if got.Filter["status"] != "active" || got.Filter["page_size"] != float64(2) || fmt.Sprint(got.Filter["tag"]) != "[a b]" {
				t.Fatal(r.Raw)
			}
		}},
		{"create", "POST", "/v1/users", `{"name":"Oska"}`, 201, func(t *testing.T, r response) {
			if r.Header.Get("Location") != "/v1/users/u-9" {
				t.Fatalf("Location = %q", r.Header.Get("Location"))
			}
		}},
		{"create with a numeric id", "POST", "/v1/orders", `{}`, 201, func(t *testing.T, r response) {
			if r.Header.Get("Location") != "/v1/orders/42" {
				t.Fatalf("Location = %q", r.Header.Get("Location"))
			}
		}},
		{"put", "PUT", "/v1/users/1", `{"name":"A"}`, 200, func(t *testing.T, r response) {
			if resultMap(t, r)["body"].(map[string]any)["name"].(string) != "A" {
				t.Fatal(r.Raw)
			}
		}},
		{"patch", "PATCH", "/v1/users/1", `{"name":"B"}`, 200, nil},
		{"delete", "DELETE", "/v1/users/1", "", 200, nil},
		{"item action", "GET", "/v1/users/1/check_purchasable", "", 200, nil},
		{"collection action", "POST", "/v1/users/search", `{"q":"os"}`, 200, func(t *testing.T, r response) {
			if resultMap(t, r)["query"].(map[string]any)["q"] != "os" {
				t.Fatal(r.Raw)
			}
		}},
		{"service error keeps its code", "GET", "/v1/users/404", "", 404, func(t *testing.T, r response) {
			if r.Env.Error.Code != socket.CodeNotFound || r.Env.Error.Message != "no user 404" {
				t.Fatal(r.Raw)
			}
		}},
		{"unknown version", "GET", "/v9/users/1", "", 404, func(t *testing.T, r response) {
			if r.Env.Error.Details["version"] != "v9" {
				t.Fatal(r.Raw)
			}
		}},
		{"unknown resource", "GET", "/v1/widgets/1", "", 404, nil},
		{"unknown action", "POST", "/v1/users/1/frobnicate", "", 404, nil},
		{"method not allowed on collection", "DELETE", "/v1/users", "", 405, func(t *testing.T, r response) {
			if r.Header.Get("Allow") != "GET, POST" || r.Env.Error.Code != socket.CodeNotSupported {
				t.Fatalf("Allow %q, %s", r.Header.Get("Allow"), r.Raw)
			}
		}},
		{"crud subset", "PUT", "/v1/orders/1", `{}`, 405, func(t *testing.T, r response) {
			if r.Header.Get("Allow") != "GET" {
				t.Fatalf("Allow %q", r.Header.Get("Allow"))
			}
		}},
		{"too deep a path", "GET", "/v1/users/1/check_purchasable/more", "", 404, nil},
		{"version only", "GET", "/v1", "", 404, nil},
		{"v2 inherits users from v1", "GET", "/v2/users/1", "", 200, nil},
		{"v2 replaced orders: no collection routes", "POST", "/v2/orders", `{}`, 404, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, ts, tc.method, tc.path, tc.body, alice...)
			if r.Status != tc.status {
				t.Fatalf("%s %s = %d, want %d: %s", tc.method, tc.path, r.Status, tc.status, r.Raw)
			}
			if r.Header.Get("X-Request-Id") == "" {
				t.Fatal("no X-Request-Id")
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	if sys.users.count("DELETE_USER") != 1 || sys.users.count("UPDATE_USER") != 2 {
		t.Fatalf("calls %v", sys.users.calls)
	}
}

func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	_, ts := startGateway(t, testYAML, svcs)
	expired := token(t, "bob", nil, -time.Hour)
	user := token(t, "bob", []string{"user"}, time.Hour)
	admin := token(t, "root", []string{"admin"}, time.Hour)
	cases := []struct {
		name    string
		path    string
		headers []string
		status  int
		subject string // checked on WHOAMI
	}{
		{"no credentials", "/v1/users/1", nil, 401, ""},
		{"bad key", "/v1/users/1", bearer("nope"), 401, ""},
		{"bad X-API-Key", "/v1/users/1", []string{"X-API-Key", "nope"}, 401, ""},
		{"expired JWT", "/v1/users/1", bearer(expired), 401, ""},
		{"good key", "/v1/users/1", bearer(aliceKey), 200, ""},
		{"good X-API-Key", "/v1/users/1", []string{"X-API-Key", aliceKey}, 200, ""},
		{"good JWT", "/v1/users/1", bearer(user), 200, ""},
		{"wrong role", "/v1/payments/1", bearer(user), 403, ""},
		{"wrong role by key", "/v1/payments/1", bearer(aliceKey), 403, ""},
		{"right role JWT", "/v1/payments/1", bearer(admin), 200, ""},
		{"right role key", "/v1/payments/1", bearer(adminKey), 200, ""},
		{"anonymous route", "/v1/users/whoami", nil, 200, "anonymous"},
		{"anonymous route, bad credentials still refused", "/v1/users/whoami", bearer(expired), 401, ""},
		{"principal forwarded", "/v1/users/whoami", bearer(user), 200, "bob"},
		{"key principal forwarded", "/v1/users/whoami", bearer(aliceKey), 200, "alice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, ts, "GET", tc.path, "", tc.headers...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Raw)
			}
			if tc.subject != "" {
				var m socket.Meta
				_ = json.Unmarshal(r.Env.Result, &m)
				if m.Principal.Subject != tc.subject || m.APIVersion != "v1" || m.Caller != "gateway" || m.RequestID == "" {
					t.Fatalf("service saw meta %+v", m)
				}
			}
		})
	}
}

func TestPipelines(t *testing.T) {
	t.Parallel()
	sys, svcs := newSystem(t)
	_, ts := startGateway(t, testYAML, svcs)
	alice := bearer(aliceKey)

	r := do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, alice...)
	if r.Status != 200 {
		t.Fatalf("v1 pay: %d %s", r.Status, r.Raw)
	}
	got := resultMap(t, r)
	if got["order_id"] != "7" || got["amount_cents"] != float64(1250) || got["note"] != "order 7 for alice" {
		t.Fatalf("v1 pay result %s: references were not filled in", r.Raw)
	}
	r = do(t, ts, "POST", "/v2/orders/7/pay", `{"card":"4242"}`, alice...)
	if r.Status != 200 || resultMap(t, r)["id"] != "p-1" {
		t.Fatalf("v2 pay: %d %s", r.Status, r.Raw)
	}
	if n := sys.paid.Load(); n != 2 {
		t.Fatalf("PAY ran %d times, want 2", n)
	}
	failures := []struct {
		name, path, body string
		status           int
		step             string
	}{
		{"first step fails", "/v2/orders/missing/pay", `{"card":"4242"}`, 404, "order"},
		{"parallel step fails (users)", "/v2/orders/7s/pay", `{"card":"4242"}`, 422, "purchasable"},
		{"parallel step fails (payments)", "/v2/orders/7/pay", `{"card":"stolen"}`, 403, "card"},
		{"last step fails", "/v2/orders/7/pay", `{"card":"declined"}`, 402, "payment"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			before := sys.paid.Load()
			r := do(t, ts, "POST", tc.path, tc.body, alice...)
			if r.Status != tc.status || r.Env.Error.Details["step"] != tc.step {
				t.Fatalf("status %d (want %d), %s (want step %s)", r.Status, tc.status, r.Raw, tc.step)
			}
			if sys.paid.Load() != before {
				t.Fatal("PAY ran although an earlier step failed")
			}
		})
	}
}
