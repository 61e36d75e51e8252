package faults_test

import (
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/tools/internal/faultproxy"
	"github.com/streamgate/streamgate/tools/internal/resttest"
)

// The Redis of the gateway's cache and Idempotency-Key store black-holed
// (its connections stay open, nothing comes back), under reads, writes and
// pays: reads are answered by the service at once (X-Cache: unavailable),
// writes without waiting on their invalidation, pays refused with 503 and
// Retry-After within 2 s and nothing charged. When Redis answers again,
// the cache serves again, and not the entry a write made stale while
// Redis was away.
func TestRedisBlackholed(t *testing.T) {
	proxy, through := redisThroughProxy(t)
	c := startCluster(t, options{cache: true, redis: through})

	item := c.newItem(t, "redis-blackhole-book", 1500, 100)
	c.newUser(t, "rbh")
	order := c.newOrder(t, "rbh", item.ID)
	read := func() (reply, error) { return c.do("", "GET", "/v1/items/"+item.ID, nil) }
	c.call(t, "", "GET", "/v1/items/"+item.ID, nil, http.StatusOK)
	if r := c.call(t, "", "GET", "/v1/items/"+item.ID, nil, http.StatusOK); r.Header.Get("X-Cache") != "hit" {
		t.Fatalf("before the fault: X-Cache %q, want hit (Redis reached through the proxy)", r.Header.Get("X-Cache"))
	}

	proxy.Blackhole()
	var slowest time.Duration
	for i := range 50 {
		r, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusOK || r.Header.Get("X-Cache") != "unavailable" {
			t.Fatalf("read %d: %d X-Cache %q after %v, want 200 unavailable", i, r.Status, r.Header.Get("X-Cache"), r.Took)
		}
		slowest = max(slowest, r.Took)
	}
	if slowest > time.Second {
		t.Errorf("the slowest read took %v, want well under a second", slowest)
	}
	write := c.call(t, adminKey, "PATCH", "/v1/items/"+item.ID, map[string]any{"price_cents": 999}, http.StatusOK)
	user, err := c.do(adminKey, "POST", "/v1/users", map[string]any{"id": "rbh2", "name": "U", "email": "rbh2@example.com"})
	if err != nil || user.Status != http.StatusCreated {
		t.Fatalf("create user: %v %v", user, err)
	}
	if took := max(write.Took, user.Took); took > time.Second {
		t.Errorf("writes took %v and %v, want well under a second", write.Took, user.Took)
	}
	pay, err := c.do(as(t, "rbh"), "POST", "/v1/orders/"+order.ID+"/pay", map[string]any{"gateway": "A", "card": cardOK}, "Idempotency-Key", newKey())
	if err != nil {
		t.Fatal(err)
	}
	if pay.Status != http.StatusServiceUnavailable || pay.Header.Get("Retry-After") == "" || pay.Reason() != "idempotency_store_unavailable" || pay.Took > 2*time.Second {
		t.Errorf("pay: %d %s Retry-After %q after %v, want 503 idempotency_store_unavailable with Retry-After within 2s", pay.Status, pay.Reason(), pay.Header.Get("Retry-After"), pay.Took)
	}
	if p := c.payments(t, order.ID); len(p) != 0 {
		t.Errorf("payments without a lease: %+v", p)
	}
	t.Logf("Redis black-holed: 50 reads 200 X-Cache: unavailable, slowest %v; PATCH item %v, POST user %v; pay %d Retry-After %s after %v",
		slowest, write.Took, user.Took, pay.Status, pay.Header.Get("Retry-After"), pay.Took)

	// Redis answers again: the cache serves again, and what the PATCH
	// changed is read fresh (its invalidation landed before any hit).
	proxy.Pass()
	back := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if got := resttest.Into[inventory.Item](t, r); got.PriceCents != 999 {
			t.Fatalf("after the fault: price %d (X-Cache %q), want 999: a stale entry served", got.PriceCents, r.Header.Get("X-Cache"))
		}
		if r.Header.Get("X-Cache") != "unavailable" {
			break
		}
		if time.Since(back) > waitLong {
			t.Fatal("the cache never used Redis again")
		}
		<-tick.C
	}
	recovered := time.Since(back)
	c.call(t, "", "GET", "/v1/items/"+item.ID, nil, http.StatusOK)
	if r := c.call(t, "", "GET", "/v1/items/"+item.ID, nil, http.StatusOK); r.Header.Get("X-Cache") != "hit" {
		t.Errorf("after the fault: X-Cache %q, want hit", r.Header.Get("X-Cache"))
	}
	c.call(t, as(t, "rbh"), "POST", "/v1/orders/"+order.ID+"/pay", map[string]any{"gateway": "A", "card": cardOK}, http.StatusOK, "Idempotency-Key", newKey())
	t.Logf("Redis back: the cache used again after %v; pay 200", recovered)
	c.settled(t)
}

// redisThroughProxy returns a fault proxy in front of the Redis in
// STREAMGATE_TEST_REDIS, closed at cleanup, and the URL of Redis through
// it; it skips the test when the variable is unset.
func redisThroughProxy(t *testing.T) (*faultproxy.Proxy, string) {
	t.Helper()
	raw := os.Getenv("STREAMGATE_TEST_REDIS")
	if raw == "" {
		t.Skip("STREAMGATE_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the Redis tests")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	through := *u
	through.Host = proxy.Addr()
	return proxy, through.String()
}
