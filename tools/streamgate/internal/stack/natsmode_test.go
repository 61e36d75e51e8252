package stack_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/tools/internal/polyglottest"
	"github.com/streamgate/streamgate/tools/internal/resttest"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

// envStackNATS set to "embedded" or a NATS URL runs every stack of these
// tests on NATS (stack.Options.NATS) with two gateways sharing Redis
// (STREAMGATE_TEST_REDIS), the REST requests alternating between them.
const envStackNATS = "STREAMGATE_TEST_STACK_NATS"

// envRedis names the Redis server the stacks on NATS share.
const envRedis = "STREAMGATE_TEST_REDIS"

// natsTurn lets one stack at a time use a NATS server named by URL: the
// services of two stacks on one server would answer each other.
var natsTurn = make(chan struct{}, 1)

// onNATS sets o up for the NATS variant when envStackNATS asks for it, and
// returns what to call once the stack has stopped (nil when it does not).
// A test that sets o.NATS itself gets the same.
func onNATS(t testing.TB, o *stack.Options) func() {
	t.Helper()
	spec := o.NATS
	if spec == "" {
		spec = os.Getenv(envStackNATS)
	}
	if spec == "" {
		return nil
	}
	if os.Getenv(polyglottest.Env) == "1" {
		t.Skipf("%s and %s=1: the Node and Python services have no NATS transport", envStackNATS, polyglottest.Env)
	}
	if os.Getenv(envRedis) == "" {
		t.Skipf("%s is set but %s is not: the two gateways on NATS share Redis", envStackNATS, envRedis)
	}
	o.NATS, o.Gateways = spec, 2
	// Bursts of hundreds of purchases under -race on a shared machine
	// wait longer than the default 250ms for a Redis connection: the
	// Idempotency-Key store would answer 503 (as designed) and the tests
	// check charges, not Redis's latency.
	yaml, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	o.ConfigData = append([]byte("redis_timeout: 2s\n"), yaml...)
	if spec != stack.NATSEmbedded {
		select {
		case natsTurn <- struct{}{}:
		case <-time.After(5 * time.Minute):
			t.Fatalf("no turn on the NATS server at %s within 5 minutes", spec)
		}
	}
	var release func()
	o.Redis, release = redisDatabase(t)
	return func() {
		release()
		if spec != stack.NATSEmbedded {
			<-natsTurn
		}
	}
}

// redisOwnerKey marks a Redis database as one stack's: the stacks of
// concurrent tests (and test processes) each take a database of their own
// from 1 to 15, so their Idempotency-Key state and cache generations do
// not meet.
const redisOwnerKey = "streamgate-test:stack-owner"

// redisDatabase takes a free database of the Redis server named by
// envRedis (its keys under streamgate: deleted) and returns its URL and
// the func that gives it back. It waits for one at most a minute.
func redisDatabase(t testing.TB) (string, func()) {
	t.Helper()
	base, err := url.Parse(os.Getenv(envRedis))
	if err != nil {
		t.Fatalf("%s: %v", envRedis, err)
	}
	opts, err := redis.ParseURL(base.String())
	if err != nil {
		t.Fatalf("%s: %v", envRedis, err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for db := 1; db <= 15; db++ {
			if db == opts.DB {
				continue // the other tests' database
			}
			dbOpts := *opts
			dbOpts.DB = db
			rdb := redis.NewClient(&dbOpts)
			if taken, err := rdb.SetNX(ctx, redisOwnerKey, token, 10*time.Minute).Result(); err != nil || !taken {
				_ = rdb.Close()
				if err != nil {
					t.Fatalf("redis database %d: %v", db, err)
				}
				continue
			}
			if err := clearStreamgateKeys(ctx, rdb); err != nil {
				t.Fatalf("redis database %d: %v", db, err)
			}
			u := *base
			u.Path = "/" + strconv.Itoa(db)
			return u.String(), func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if owner, err := rdb.Get(ctx, redisOwnerKey).Result(); err == nil && owner == token {
					rdb.Del(ctx, redisOwnerKey)
				}
				_ = rdb.Close()
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("no free Redis database (1–15) at %s within a minute", base.Redacted())
		}
	}
}

// clearStreamgateKeys deletes what an earlier stack left in the database.
func clearStreamgateKeys(ctx context.Context, rdb *redis.Client) error {
	iter := rdb.Scan(ctx, 0, "streamgate:*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}

// alternate sends each request to the stack's gateways in turn: the
// first's REST URL is the client's base, rewritten to the next one's.
type alternate struct {
	next  http.RoundTripper
	first string   // the first gateway's host:port
	hosts []string // every gateway's, the first's first
	n     atomic.Uint64
}

func (a *alternate) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != a.first {
		return a.next.RoundTrip(r)
	}
	host := a.hosts[(a.n.Add(1)-1)%uint64(len(a.hosts))]
	r = r.Clone(r.Context())
	r.URL.Host, r.Host = host, ""
	return a.next.RoundTrip(r)
}

// TestStackOnNATS runs the stack on an embedded NATS server with two
// gateways sharing Redis, and checks what they share: the services answer
// on NATS as micro services, a write through one gateway invalidates the
// other's cached read, an Idempotency-Key answered by one is replayed by
// the other (charged once), and an event of a write through one reaches a
// WebSocket client of the other.
func TestStackOnNATS(t *testing.T) {
	if os.Getenv(envRedis) == "" {
		t.Skipf("%s is not set (e.g. redis://127.0.0.1:6379/0): two gateways share Redis, skipping the stack on NATS", envRedis)
	}
	polyglottest.GoOnly(t, "the Node and Python services have no NATS transport")
	s := startStack(t, stack.Options{NATS: stack.NATSEmbedded, Gateways: 2})
	if len(s.gateways) != 2 || s.nats == "" {
		t.Fatalf("want two gateways and a NATS server in the banner:\n%s", s.banner)
	}
	nc := natstest.Connect(t, s.nats)
	for _, name := range []string{"users", "inventory", "orders", "payments"} {
		natstest.WaitService(t, nc, name, 1, 1)
	}
	gw := make([]*resttest.Client, len(s.gateways))
	for i, base := range s.gateways {
		gw[i] = &resttest.Client{Base: base, HTTP: &http.Client{Timeout: requestTimeout}}
	}
	do := func(c *resttest.Client, cred, method, path string, body any, header ...string) reply {
		t.Helper()
		r, err := c.Do(cred, method, path, body, header...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	it := resttest.Into[inventory.Item](t, do(gw[0], admin(), "POST", "/v1/items", map[string]any{"name": "shared", "price_cents": 700, "stock": 5}).Want(t, http.StatusCreated, ""))
	t.Run("a write through one gateway invalidates the other's cache", func(t *testing.T) {
		// Gateway 2 caches the item (the create's own invalidation may
		// land after its first read: read until a hit, within a deadline).
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for deadline := time.Now().Add(requestTimeout); ; <-tick.C {
			r := do(gw[1], anonymous, "GET", "/v1/items/"+it.ID, nil).Want(t, http.StatusOK, "")
			if r.Header.Get("X-Cache") == "hit" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("gateway 2 never answered the item from its cache: X-Cache %q", r.Header.Get("X-Cache"))
			}
		}
		do(gw[0], admin(), "PATCH", "/v1/items/"+it.ID, map[string]any{"stock": 4}).Want(t, http.StatusOK, "")
		got := resttest.Into[inventory.Item](t, do(gw[1], anonymous, "GET", "/v1/items/"+it.ID, nil).Want(t, http.StatusOK, ""))
		if got.Stock != 4 {
			t.Fatalf("gateway 2 reads stock %d after gateway 1 wrote 4", got.Stock)
		}
	})

	t.Run("an Idempotency-Key answered by one gateway is replayed by the other", func(t *testing.T) {
		s.newUser(t, "nats-ann")
		o := resttest.Into[orders.Order](t, do(gw[0], as(t, "nats-ann"), "POST", "/v1/orders",
			map[string]any{"lines": []map[string]any{{"item_id": it.ID, "quantity": 1}}}).Want(t, http.StatusCreated, ""))
		body := map[string]any{"gateway": "B", "card": cardOK}
		key := "Idempotency-Key"
		first := do(gw[0], as(t, "nats-ann"), "POST", "/v3/orders/"+o.ID+"/pay", body, key, "nats-pay-"+o.ID).Want(t, http.StatusOK, "")
		again := do(gw[1], as(t, "nats-ann"), "POST", "/v3/orders/"+o.ID+"/pay", body, key, "nats-pay-"+o.ID).Want(t, http.StatusOK, "")
		if again.Header.Get("Idempotent-Replayed") != "true" || again.Raw != first.Raw {
			t.Fatalf("the retry on gateway 2: %s (replayed %q), want %s replayed", again.Raw, again.Header.Get("Idempotent-Replayed"), first.Raw)
		}
		if n := s.payments(t, o.ID); n[payments.StatusSucceeded] != 1 || len(n) != 1 {
			t.Fatalf("payments: %v, want exactly 1 succeeded", n)
		}
		s.checkCharged(t, o.ID)
	})

	t.Run("an event of a write through one gateway reaches a socket on the other", func(t *testing.T) {
		ws := socketTo(t, gw[1].Base, "v1", anonymous)
		ws.send(map[string]any{"type": "subscribe", "id": "i", "topic": "items/" + it.ID})
		if f := ws.answer("i", nil); f.Status != http.StatusOK {
			t.Fatalf("subscribe: %s", f.raw)
		}
		do(gw[0], admin(), "PATCH", "/v1/items/"+it.ID, map[string]any{"stock": 9}).Want(t, http.StatusOK, "")
		for deadline := time.Now().Add(requestTimeout); ; {
			if time.Now().After(deadline) {
				t.Fatal("no event with stock 9 on gateway 2's socket")
			}
			f := ws.read()
			var item inventory.Item
			if f.Type != "event" || f.Topic != "items/"+it.ID || json.Unmarshal(f.Data, &item) != nil {
				t.Fatalf("unexpected frame %s", f.raw)
			}
			if item.Stock == 9 {
				return
			}
		}
	})
}

// The NATS variant's client sends its requests to each gateway in turn,
// and leaves other hosts (the admin listener's) alone.
func TestAlternateTakesTurns(t *testing.T) {
	var hits [3]atomic.Int64
	servers := make([]*httptest.Server, len(hits))
	for i := range servers {
		servers[i] = httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits[i].Add(1) }))
		t.Cleanup(servers[i].Close)
	}
	host := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	a := &alternate{next: tr, first: host(servers[0]), hosts: []string{host(servers[0]), host(servers[1])}}
	c := &http.Client{Transport: a}
	get := func(url string) {
		t.Helper()
		r, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Body.Close()
	}
	for range 4 {
		get(servers[0].URL + "/v1/items")
	}
	get(servers[2].URL + "/metrics")
	if got := [3]int64{hits[0].Load(), hits[1].Load(), hits[2].Load()}; got != [3]int64{2, 2, 1} {
		t.Fatalf("requests per server %v, want [2 2 1]", got)
	}
}
