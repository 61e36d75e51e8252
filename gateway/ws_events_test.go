package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// shopYAML routes an orders service whose orders only their owner and
// admins may see (NOT_FOUND to anyone else, as the shop's orders service
// answers) and whose updates publish orders/{id}.
const shopYAML = `
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
    - {name: alice, secret_env: ALICE_KEY, subject: alice}
  jwt:
    - {issuer: test, audience: streamgate, hs256_secret_env: JWT_SECRET}
services:
  orders: {target: "${ADDR_orders}", key_env: SERVICE_KEY}
versions:
  v1:
    resources:
      orders: {service: orders, crud: [get, update]}
`

// startOrdersShop serves shopYAML in front of a real publishing service: order
// o1 is alice's, o2 bob's. No cache: its own subscriptions would hide
// whether the socket's end.
func startOrdersShop(t *testing.T, opts ...gateway.Option) (*gateway.Gateway, *httptest.Server) {
	t.Helper()
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true})
	must(t, err)
	srv, err := socket.NewServer(socket.Config{Name: "orders"}, socket.WithKeys(keys), socket.WithDrainTimeout(2*time.Second))
	must(t, err)
	owners := map[string]string{"o1": "alice", "o2": "bob"}
	visible := func(ctx context.Context, id string) bool {
		p := socket.MetaFrom(ctx).Principal
		return owners[id] != "" && (p.Subject == owners[id] || p.HasRole("admin"))
	}
	must(t, srv.Handle("GET_ORDER", socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
		if !visible(ctx, r.ResourceID) {
			return nil, socket.Errorf(socket.CodeNotFound, "no order %s", r.ResourceID)
		}
		return json.Marshal(map[string]string{"id": r.ResourceID, "user_id": owners[r.ResourceID]})
	}), socket.Read()))
	must(t, srv.Handle("UPDATE_ORDER", socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
		if !visible(ctx, r.ResourceID) {
			return nil, socket.Errorf(socket.CodeNotFound, "no order %s", r.ResourceID)
		}
		vis := socket.Visibility{Subjects: []string{owners[r.ResourceID]}, Roles: []string{"admin"}}
		return r.Body, srv.Publish("orders/"+r.ResourceID, r.Body, vis)
	})))
	addr := sockettest.Serve(t, srv)
	// Its tests follow every event: orders say conflate: false (a
	// conflated topic may skip states; ws_conflate_test.go tests that).
	yaml := strings.ReplaceAll(shopYAML, "crud: [get, update]}", "crud: [get, update], conflate: false}")
	cfg := parseConfig(t, strings.ReplaceAll(yaml, "${ADDR_orders}", addr), nil)
	g, err := gateway.New(cfg, append([]gateway.Option{gateway.WithCacheSize(0)}, opts...)...)
	must(t, err)
	return g, serveHTTP(t, g)
}

func shopSocket(t *testing.T, ts *httptest.Server, headers ...string) *wsClient {
	return dialSocket(t, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/socket", headers...)
}

func TestSocketSubscribeEventsInSeqOrder(t *testing.T) {
	t.Parallel()
	g, ts := startOrdersShop(t)
	alice := shopSocket(t, ts, bearer(aliceKey)...)
	sub := alice.request(`{"type":"request","id":"x","method":"GET","path":"/orders/o1"}`)
	if sub.Status != 200 {
		t.Fatalf("GET: %s", sub.raw)
	}
	// The answer carries the topic's seq now: the first event has seq 1.
	if f := alice.request(`{"type":"subscribe","id":"9","topic":"orders/o1"}`); f.Status != 200 || !f.OK || string(f.ID) != `"9"` || !strings.Contains(f.raw, `"seq":0`) {
		t.Fatalf("subscribe: %s", f.raw)
	}
	// An admin watching too shares the gateway's one upstream subscription.
	admin := shopSocket(t, ts, "X-API-Key", adminKey)
	if f := admin.request(`{"type":"subscribe","id":1,"topic":"orders/o1"}`); f.Status != 200 {
		t.Fatalf("admin subscribe: %s", f.raw)
	}
	if n := gateway.Upstreams(g); n != 1 {
		t.Fatalf("%d upstream subscriptions, want 1", n)
	}
	const n = 20
	for i := range n {
		if r := do(t, ts, "PUT", "/v1/orders/o1", fmt.Sprintf(`{"n":%d}`, i), "X-API-Key", adminKey); r.Status != 200 {
			t.Fatalf("PUT: %d %s", r.Status, r.Raw)
		}
	}
	for _, c := range []*wsClient{alice, admin} {
		var last uint64
		for i := range n {
			f := c.read()
			if f.Type != "event" || f.Topic != "orders/o1" || string(f.Data) != fmt.Sprintf(`{"n":%d}`, i) {
				t.Fatalf("event %d: %s", i, f.raw)
			}
			if i > 0 && f.Seq != last+1 {
				t.Fatalf("seq %d after %d: %s", f.Seq, last, f.raw)
			}
			last = f.Seq
		}
	}
	// Unsubscribing (and closing) releases the upstream subscription.
	if f := alice.request(`{"type":"unsubscribe","id":"10","topic":"orders/o1"}`); f.Status != 200 {
		t.Fatalf("unsubscribe: %s", f.raw)
	}
	if n := gateway.Upstreams(g); n != 1 {
		t.Fatalf("%d upstream subscriptions while the admin watches, want 1", n)
	}
	if f := admin.request(`{"type":"unsubscribe","id":"11","topic":"orders/o1"}`); f.Status != 200 {
		t.Fatalf("unsubscribe: %s", f.raw)
	}
	if n := gateway.Upstreams(g); n != 0 {
		t.Fatalf("%d upstream subscriptions after the last unsubscribe, want 0", n)
	}
	// After unsubscribing, the next frame is the answer to a request, not an event.
	if r := do(t, ts, "PUT", "/v1/orders/o1", `{"n":99}`, "X-API-Key", adminKey); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	if f := alice.request(`{"type":"request","id":"y","method":"GET","path":"/orders/o1"}`); f.Type != "response" {
		t.Fatalf("after unsubscribe: %s", f.raw)
	}
}

func TestSocketSubscribeRefusedAsREST(t *testing.T) {
	t.Parallel()
	g, ts := startOrdersShop(t)
	alice := shopSocket(t, ts, bearer(aliceKey)...)
	anon := shopSocket(t, ts)
	cases := []struct {
		name  string
		c     *wsClient
		topic string
		rest  []string // the REST GET's credentials; nil: not comparable
		want  int
	}{
		{"someone else's order", alice, "orders/o2", bearer(aliceKey), 404},
		{"a missing order", alice, "orders/o404", bearer(aliceKey), 404},
		{"anonymous", anon, "orders/o1", []string{}, 401},
		{"no such resource", alice, "users/1", nil, 404},
		{"not one object", alice, "orders", nil, 400},
		{"a pattern", alice, "orders/*", nil, 400},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.c.request(fmt.Sprintf(`{"type":"subscribe","id":%d,"topic":%q}`, i, tc.topic))
			if f.Status != tc.want || f.OK {
				t.Fatalf("subscribe %s: %s, want %d", tc.topic, f.raw, tc.want)
			}
			if tc.rest != nil {
				r := do(t, ts, "GET", "/v1/"+tc.topic, "", tc.rest...)
				if r.Status != f.Status || r.Env.Error.Code != f.Error.Code || r.Env.Error.Message != f.Error.Message {
					t.Fatalf("socket %d %+v, REST %d %+v", f.Status, f.Error, r.Status, r.Env.Error)
				}
			}
		})
	}
	if n := gateway.Upstreams(g); n != 0 {
		t.Fatalf("%d upstream subscriptions after refusals, want 0", n)
	}
	// A refused subscription gets no events: bob's order changes, alice
	// sees only her next answer.
	if r := do(t, ts, "PUT", "/v1/orders/o2", `{"n":1}`, "X-API-Key", adminKey); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	if f := alice.request(`{"type":"request","id":"z","method":"GET","path":"/orders/o1"}`); f.Type != "response" || f.Status != 200 {
		t.Fatalf("after refusals: %s", f.raw)
	}
}

func TestSocketCloseReleasesSubscriptions(t *testing.T) {
	t.Parallel()
	g, ts := startOrdersShop(t)
	alice := shopSocket(t, ts, bearer(aliceKey)...)
	if f := alice.request(`{"type":"subscribe","id":"1","topic":"orders/o1"}`); f.Status != 200 {
		t.Fatalf("subscribe: %s", f.raw)
	}
	if f := alice.request(`{"type":"subscribe","id":"2","topic":"orders/o1"}`); f.Status != 200 {
		t.Fatalf("subscribe again: %s", f.raw)
	}
	if n := gateway.Upstreams(g); n != 1 {
		t.Fatalf("%d upstream subscriptions, want 1", n)
	}
	_ = alice.c.CloseNow()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for gateway.Upstreams(g) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the closed socket's subscription was not released")
		}
		<-tick.C
	}
}

// An unsubscribe sent right behind its subscribe wins, whichever finishes
// first: no watch is left and no event comes. The topic bound holds for
// subscribes in flight together.
func TestSocketUnsubscribeRacingSubscribe(t *testing.T) {
	t.Parallel()
	g, ts := startOrdersShop(t, gateway.WithSocketLimits(gateway.SocketLimits{Topics: 1}))
	admin := shopSocket(t, ts, "X-API-Key", adminKey)
	for i := range 5 {
		admin.send(fmt.Sprintf(`{"type":"subscribe","id":"s%d","topic":"orders/o1"}`, i))
		admin.send(fmt.Sprintf(`{"type":"unsubscribe","id":"u%d","topic":"orders/o1"}`, i))
		for range 2 {
			if f := admin.read(); f.Type != "response" || f.Status != 200 {
				t.Fatalf("round %d: %s", i, f.raw)
			}
		}
		if n := gateway.Upstreams(g); n != 0 {
			t.Fatalf("round %d: %d upstream subscriptions after subscribe + unsubscribe, want 0", i, n)
		}
	}
	if r := do(t, ts, "PUT", "/v1/orders/o1", `{"n":1}`, "X-API-Key", adminKey); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	if f := admin.request(`{"type":"request","id":"g","method":"GET","path":"/orders/o1"}`); f.Type != "response" {
		t.Fatalf("an event after unsubscribing: %s", f.raw)
	}
	admin.send(`{"type":"subscribe","id":"a","topic":"orders/o1"}`)
	admin.send(`{"type":"subscribe","id":"b","topic":"orders/o2"}`)
	statuses := map[int]int{}
	for range 2 {
		statuses[admin.read().Status]++
	}
	if statuses[200] != 1 || statuses[429] != 1 {
		t.Fatalf("two subscribes under a bound of one: statuses %v", statuses)
	}
}
