package cache_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/gateway/cache"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newCache returns a cache with local generations, closed at cleanup.
func newCache(t testing.TB, maxBytes int64) *cache.Cache {
	t.Helper()
	c := cache.New(maxBytes, cache.NewLocalGenerations())
	t.Cleanup(c.Close)
	return c
}

// put stores result under key with fresh generations of tags.
func put(t testing.TB, c *cache.Cache, key string, tags []string, result string, ttl time.Duration) {
	t.Helper()
	gens, err := c.Snapshot(context.Background(), tags)
	if err != nil {
		t.Fatal(err)
	}
	c.Put(key, tags, gens, json.RawMessage(result), nil, ttl)
}

func wantHit(t testing.TB, c *cache.Cache, key, result string) *cache.Entry {
	t.Helper()
	e, ok := c.Get(context.Background(), key)
	if !ok {
		t.Fatalf("%s: miss, want a hit", key)
	}
	if string(e.Result) != result {
		t.Fatalf("%s: %s, want %s", key, e.Result, result)
	}
	return e
}

func wantMiss(t testing.TB, c *cache.Cache, key string) {
	t.Helper()
	if e, ok := c.Get(context.Background(), key); ok {
		t.Fatalf("%s: hit %s, want a miss", key, e.Result)
	}
}

// waitMiss waits until key misses, at most bound.
func waitMiss(t testing.TB, c *cache.Cache, key string, bound time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(bound)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if _, ok := c.Get(context.Background(), key); !ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still cached after %v", key, bound)
		}
		<-tick.C
	}
}

func TestTTLWithJitter(t *testing.T) {
	t.Parallel()
	c := newCache(t, 1<<20)
	const ttl = 200 * time.Millisecond
	start := time.Now()
	var expiries []time.Time
	for i := range 50 {
		key := fmt.Sprint("k", i)
		put(t, c, key, []string{"users|users|1"}, `{"n":1}`, ttl)
		expiries = append(expiries, wantHit(t, c, key, `{"n":1}`).Expires)
	}
	distinct := map[time.Time]bool{}
	for i, exp := range expiries {
		d := exp.Sub(start)
		if d < ttl*9/10 || d > ttl*11/10+50*time.Millisecond {
			t.Fatalf("entry %d expires after %v; want the TTL %v ±10%%", i, d, ttl)
		}
		distinct[exp] = true
	}
	if len(distinct) < 25 {
		t.Fatalf("only %d distinct expiries among 50 entries filled together: no jitter", len(distinct))
	}
	// k0 is served until it expires, then never again.
	gone := waitMiss(t, c, "k0", 2*ttl)
	if early := expiries[0].Sub(gone); early > 5*time.Millisecond {
		t.Fatalf("k0 missed %v before it expired", early)
	}
	wantMiss(t, c, "k0")

	// No TTL: not stored.
	put(t, c, "zero", nil, `1`, 0)
	wantMiss(t, c, "zero")
}

func TestInvalidateByTag(t *testing.T) {
	t.Parallel()
	c := newCache(t, 1<<20)
	ctx := context.Background()
	item1 := []string{"users|users|1", "users|*|*"}
	item2 := []string{"users|users|2", "users|*|*"}
	list := []string{"users|users|*", "users|*|*"}
	orders := []string{"orders|orders|1", "orders|*|*"}
	fill := func() {
		put(t, c, "GET_USER 1", item1, `"u1"`, time.Minute)
		put(t, c, "GET_USER 2", item2, `"u2"`, time.Minute)
		put(t, c, "LIST_USERS", list, `["u1","u2"]`, time.Minute)
		put(t, c, "GET_ORDER 1", orders, `"o1"`, time.Minute)
	}
	fill()
	// UPDATE_USER 1 drops GET_USER 1 and LIST_USERS, nothing else.
	if err := c.Invalidate(ctx, []string{"users|users|1", "users|users|*"}); err != nil {
		t.Fatal(err)
	}
	wantMiss(t, c, "GET_USER 1")
	wantMiss(t, c, "LIST_USERS")
	wantHit(t, c, "GET_USER 2", `"u2"`)
	wantHit(t, c, "GET_ORDER 1", `"o1"`)

	// Filled again after the write, the entries hit again.
	fill()
	wantHit(t, c, "GET_USER 1", `"u1"`)
	wantHit(t, c, "LIST_USERS", `["u1","u2"]`)

	// A service-wide tag drops every read of the service.
	if err := c.Invalidate(ctx, []string{"users|*|*"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"GET_USER 1", "GET_USER 2", "LIST_USERS"} {
		wantMiss(t, c, k)
	}
	wantHit(t, c, "GET_ORDER 1", `"o1"`)
}

func TestWriteDuringReadMakesTheAnswerMiss(t *testing.T) {
	t.Parallel()
	c := newCache(t, 1<<20)
	ctx := context.Background()
	tags := []string{"users|users|1", "users|*|*"}
	gens, err := c.Snapshot(ctx, tags) // the read starts
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(ctx, tags[:1]); err != nil { // a write lands meanwhile
		t.Fatal(err)
	}
	c.Put("GET_USER 1", tags, gens, json.RawMessage(`"before the write"`), nil, time.Minute)
	wantMiss(t, c, "GET_USER 1")

	// Generations that do not match the tags are not stored.
	c.Put("GET_USER 1", tags, gens[:1], json.RawMessage(`"x"`), nil, time.Minute)
	wantMiss(t, c, "GET_USER 1")
}

func TestOnlyNotFoundErrorsAreCachedAndBriefly(t *testing.T) {
	t.Parallel()
	c := newCache(t, 1<<20)
	ctx := context.Background()
	tags := []string{"users|users|404"}
	gens, _ := c.Snapshot(ctx, tags)
	for i := range 100 {
		key := fmt.Sprint("nf", i)
		c.Put(key, tags, gens, nil, socket.Errorf(socket.CodeNotFound, "no user 404"), time.Hour)
		after := time.Now() // Expires is Put's now + TTL; Put's now is before this
		e, ok := c.Get(ctx, key)
		if !ok || e.Err == nil || e.Err.Code != socket.CodeNotFound || e.Result != nil {
			t.Fatalf("NOT_FOUND entry: %+v, %v", e, ok)
		}
		if life := e.Expires.Sub(after); life > cache.NotFoundTTL || life <= 0 {
			t.Fatalf("NOT_FOUND cached for %v with a TTL of 1h; want at most %v", life, cache.NotFoundTTL)
		}
	}
	for _, code := range []status.Code{socket.CodeInternal, socket.CodeUnavailable, socket.CodePermissionDenied, socket.CodeDeadlineExceeded} {
		c.Put("err", tags, gens, nil, socket.Errorf(code, "no"), time.Hour)
		wantMiss(t, c, "err")
	}
	// A create invalidates the item: the NOT_FOUND goes at once.
	if err := c.Invalidate(ctx, tags); err != nil {
		t.Fatal(err)
	}
	wantMiss(t, c, "nf0")
}

func TestETag(t *testing.T) {
	t.Parallel()
	a, b := cache.ETag([]byte(`{"id":1}`)), cache.ETag([]byte(`{"id":2}`))
	if a == b || a != cache.ETag([]byte(`{"id":1}`)) {
		t.Fatalf("ETags %s, %s", a, b)
	}
	if !strings.HasPrefix(a, `"`) || !strings.HasSuffix(a, `"`) || strings.HasPrefix(a, `W/`) {
		t.Fatalf("ETag %s is not a quoted strong tag", a)
	}
	c := newCache(t, 1<<20)
	put(t, c, "k", nil, `{"id":1}`, time.Minute)
	if e := wantHit(t, c, "k", `{"id":1}`); e.ETag != a {
		t.Fatalf("entry ETag %s, want %s", e.ETag, a)
	}
}

// TestEntryIsEncodedOnce: a stored result comes with its envelope and its
// ETag's header values, made when it was stored and the same on every hit.
func TestEntryIsEncodedOnce(t *testing.T) {
	t.Parallel()
	c := newCache(t, 1<<20)
	put(t, c, "k", []string{"users|1"}, `{"id":1}`, time.Minute)
	first := wantHit(t, c, "k", `{"id":1}`)
	if string(first.Envelope) != "{\"ok\":true,\"result\":{\"id\":1}}\n" {
		t.Fatalf("envelope %q", first.Envelope)
	}
	if len(first.ETagValues) != 1 || first.ETagValues[0] != first.ETag {
		t.Fatalf("ETag values %q for ETag %s", first.ETagValues, first.ETag)
	}
	again := wantHit(t, c, "k", `{"id":1}`)
	if &again.Envelope[0] != &first.Envelope[0] || &again.ETagValues[0] != &first.ETagValues[0] {
		t.Fatal("a second hit encoded its answer again")
	}
	gens, _ := c.Snapshot(context.Background(), []string{"users|2"})
	c.Put("nf", []string{"users|2"}, gens, nil, socket.Errorf(socket.CodeNotFound, "no user 2"), time.Minute)
	e, ok := c.Get(context.Background(), "nf")
	if !ok {
		t.Fatal("a NOT_FOUND entry missed")
	}
	if e.Envelope != nil {
		t.Fatalf("a NOT_FOUND entry has the envelope %q; want none (errors are encoded per answer)", e.Envelope)
	}
}

// TestMemoryStaysUnderTheBound fills a small cache with many distinct keys
// (answers small and large, results and NOT_FOUNDs) and checks the bytes
// it keeps, as the cache weighs them and as the heap measures them. It
// runs alone: other tests would disturb the heap.
func TestMemoryStaysUnderTheBound(t *testing.T) {
	const bound = 2 << 20
	cases := []struct {
		name   string
		result int // bytes; 0: a NOT_FOUND error
		n      int // distinct keys offered: many times what fits
	}{
		{"tiny results", 8, 40_000},
		{"small results", 300, 25_000},
		{"large results", 16 << 10, 2_000},
		{"not found", 0, 35_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := heapInUse()
			c := cache.New(bound, cache.NewLocalGenerations())
			defer c.Close()
			ctx := context.Background()
			for i := range tc.n {
				// Keys, tags and answers are built per request, as the
				// gateway builds them.
				key := fmt.Sprintf("users\x00GET_USER\x00%d\x00v1\x00alice|", i)
				tags := []string{fmt.Sprint("users|users|", i), "users|*|*"}
				gens, _ := c.Snapshot(ctx, tags)
				if tc.result == 0 {
					c.Put(key, tags, gens, nil, socket.Errorf(socket.CodeNotFound, "no user %d", i), time.Hour)
				} else {
					result := json.RawMessage(fmt.Sprintf(`{"id":%d,"name":"%s"}`, i, strings.Repeat("x", tc.result)))
					c.Put(key, tags, gens, result, nil, time.Hour)
				}
				if i%1000 == 0 {
					if _, weight := c.Size(); weight > bound {
						t.Fatalf("after %d puts the cache weighs %d bytes, over its bound %d", i+1, weight, bound)
					}
				}
			}
			entries, weight := c.Size()
			if weight > bound {
				t.Fatalf("the cache weighs %d bytes, over its bound %d", weight, bound)
			}
			if entries == 0 || entries >= tc.n/5 {
				t.Fatalf("%d entries kept of %d offered under a %d-byte bound", entries, tc.n, bound)
			}
			// The heap agrees: what the cache holds stays within the bound.
			used := heapInUse() - before
			if used > bound {
				t.Fatalf("the cache holds %d bytes of heap (%d entries), over its bound %d", used, entries, bound)
			}
			runtime.KeepAlive(c)
		})
	}
}

func heapInUse() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// redisURL returns STREAMGATE_TEST_REDIS, or skips the test.
func redisURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("STREAMGATE_TEST_REDIS")
	if url == "" {
		t.Skip("STREAMGATE_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the Redis tests")
	}
	return url
}

// redisPrefix returns a key prefix of the test's own and deletes its keys
// at cleanup.
func redisPrefix(t *testing.T, url string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "streamgate:test:" + hex.EncodeToString(b[:]) + ":"
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		_ = rdb.Close()
	})
	return prefix
}

func redisGenerations(t *testing.T, url, prefix string, opts ...cache.RedisOption) *cache.RedisGenerations {
	t.Helper()
	g, err := cache.NewRedisGenerations(url, prefix, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func TestRedisGenerationsAcrossGateways(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	prefix := redisPrefix(t, url)
	ctx := context.Background()
	// Two gateways: two caches, each with its own connection to Redis.
	a := cache.New(1<<20, redisGenerations(t, url, prefix))
	b := cache.New(1<<20, redisGenerations(t, url, prefix))
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)

	gens, err := a.Snapshot(ctx, []string{"never-bumped", "x"})
	if err != nil || len(gens) != 2 || gens[0] != 0 || gens[1] != 0 {
		t.Fatalf("fresh generations %v, %v; want [0 0]", gens, err)
	}
	item := []string{"users|users|1", "users|*|*"}
	other := []string{"users|users|2", "users|*|*"}
	for _, c := range []*cache.Cache{a, b} {
		put(t, c, "GET_USER 1", item, `"old"`, time.Minute)
		put(t, c, "GET_USER 2", other, `"two"`, time.Minute)
		wantHit(t, c, "GET_USER 1", `"old"`)
	}
	// A write through gateway A: gateway B's copy misses too.
	if err := a.Invalidate(ctx, item[:1]); err != nil {
		t.Fatal(err)
	}
	wantMiss(t, a, "GET_USER 1")
	wantMiss(t, b, "GET_USER 1")
	wantHit(t, b, "GET_USER 2", `"two"`)

	// A read on B that started before a write on A is not stored.
	gens, err = b.Snapshot(ctx, item)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Invalidate(ctx, item[:1]); err != nil {
		t.Fatal(err)
	}
	b.Put("GET_USER 1", item, gens, json.RawMessage(`"stale"`), nil, time.Minute)
	wantMiss(t, b, "GET_USER 1")

	// Another prefix is another namespace: untouched.
	c := cache.New(1<<20, redisGenerations(t, url, redisPrefix(t, url)))
	t.Cleanup(c.Close)
	put(t, c, "GET_USER 1", item, `"elsewhere"`, time.Minute)
	if err := a.Invalidate(ctx, item); err != nil {
		t.Fatal(err)
	}
	wantHit(t, c, "GET_USER 1", `"elsewhere"`)
}

func TestRedisGenerationsConcurrentBumps(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	prefix := redisPrefix(t, url)
	g1, g2 := redisGenerations(t, url, prefix), redisGenerations(t, url, prefix)
	ctx := context.Background()
	// A key starts at Redis's clock (see TestExpiredGenerationNeverRevivesAnEntry):
	// the bumps after the first one count from there.
	if err := g1.Bump(ctx, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	base, err := g1.Load(ctx, []string{"a", "b"})
	if err != nil || base[0] == 0 || base[1] == 0 {
		t.Fatalf("generations after one bump %v, %v", base, err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := g1
			if i%2 == 1 {
				g = g2
			}
			if err := g.Bump(ctx, []string{"a", "b"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	gens, err := g1.Load(ctx, []string{"a", "b", "c"})
	// Concurrent bumps of one gateway may land as one (each lands after
	// its own write); each gateway's land at least once.
	if err != nil || gens[0] < base[0]+2 || gens[0] > base[0]+20 || gens[1]-base[1] != gens[0]-base[0] || gens[2] != 0 {
		t.Fatalf("generations %v, %v; want %v each advanced by 2 to 20, then 0", gens, err, base)
	}
	// Bumps one after the other all count.
	for range 5 {
		if err := g2.Bump(ctx, []string{"a"}); err != nil {
			t.Fatal(err)
		}
	}
	if after, err := g1.Load(ctx, []string{"a"}); err != nil || after[0] != gens[0]+5 {
		t.Fatalf("after 5 more bumps: %v, %v; want %d", after, err, gens[0]+5)
	}
}

func TestUnreachableGenerationsServeNothing(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: every Load fails, so nothing is stored
	// and nothing is served (rather than serving what may be stale).
	g, err := cache.NewRedisGenerations("redis://127.0.0.1:1/0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c := cache.New(1<<20, g)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gens, err := c.Snapshot(ctx, []string{"t"})
	if err == nil {
		t.Fatal("Snapshot succeeded against an unreachable Redis")
	}
	c.Put("k", []string{"t"}, gens, json.RawMessage(`1`), nil, time.Minute)
	wantMiss(t, c, "k")
	if _, err := cache.NewRedisGenerations("http://not-redis", ""); err == nil {
		t.Fatal("NewRedisGenerations accepted a non-Redis URL")
	}
}
