package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgate/streamgate/gateway/cache"
	"github.com/streamgate/streamgate/internal/blackhole"
)

// rawRedis is a plain client of the test's Redis, closed at cleanup.
func rawRedis(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Every generation key a bump writes expires: its TTL is set, and set
// again by each bump.
func TestGenerationKeysExpire(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	prefix := redisPrefix(t, url)
	g := redisGenerations(t, url, prefix)
	rdb := rawRedis(t, url)
	ctx := context.Background()
	tags := []string{"orders|orders|1", "orders|orders|*", "orders|*|*"}
	for range 3 {
		if err := g.Bump(ctx, tags); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) != len(tags) {
		t.Fatalf("keys %v, %v; want %d", keys, err, len(tags))
	}
	for _, k := range keys {
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > cache.DefaultGenerationTTL {
			t.Errorf("%s: TTL %v, %v; want in (0, %v]", k, ttl, err, cache.DefaultGenerationTTL)
		}
	}
}

// A generation key that expires and is bumped again never comes back to
// a value it had: an entry filled under the old value stays a miss.
func TestExpiredGenerationNeverRevivesAnEntry(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	prefix := redisPrefix(t, url)
	g := redisGenerations(t, url, prefix)
	rdb := rawRedis(t, url)
	c := cache.New(1<<20, g)
	t.Cleanup(c.Close)
	ctx := context.Background()
	tags := []string{"users|users|1"}
	for range 3 {
		if err := c.Invalidate(ctx, tags); err != nil {
			t.Fatal(err)
		}
	}
	gens, err := c.Snapshot(ctx, tags)
	if err != nil {
		t.Fatal(err)
	}
	c.Put("GET_USER 1", tags, gens, json.RawMessage(`"old"`), nil, time.Minute)
	wantHit(t, c, "GET_USER 1", `"old"`)

	// The key expires (made to, rather than waited for)…
	if err := rdb.PExpire(ctx, prefix+tags[0], time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rdb.Exists(ctx, prefix+tags[0]).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the key did not expire")
		}
		time.Sleep(time.Millisecond)
	}
	// …and as many writes as before it bump it again: the entry, never
	// looked at meanwhile, must not be served.
	for range 3 {
		if err := c.Invalidate(ctx, tags); err != nil {
			t.Fatal(err)
		}
	}
	now, err := c.Snapshot(ctx, tags)
	if err != nil {
		t.Fatal(err)
	}
	if now[0] == gens[0] {
		t.Errorf("generation %d again after the key expired", now[0])
	}
	wantMiss(t, c, "GET_USER 1")
}

// Entries under expiring generations live at most half the keys' TTL, so
// an entry filled while a key was absent (generation 0) is gone before
// the key a later bump creates can expire.
func TestEntriesLiveAtMostHalfTheGenerationTTL(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	g := redisGenerations(t, url, redisPrefix(t, url), cache.WithGenerationTTL(time.Minute))
	c := cache.New(1<<20, g)
	t.Cleanup(c.Close)
	put(t, c, "k", []string{"t"}, `1`, time.Hour)
	e := wantHit(t, c, "k", `1`)
	if left := time.Until(e.Expires); left > 30*time.Second {
		t.Errorf("the entry lives %v more, want at most 30s (half the generations' TTL)", left)
	}
}

// A Redis that accepts and never answers costs one call deadline; then
// calls fail at once until it answers again, and a bump that failed is
// kept.
func TestBlackholedGenerationsFailFast(t *testing.T) {
	t.Parallel()
	g, err := cache.NewRedisGenerations("redis://"+blackhole.Listen(t)+"/0", "")
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(1<<20, g)
	defer func() { c.Close(); _ = g.Close() }()
	ctx := context.Background()
	start := time.Now()
	if _, err := c.Snapshot(ctx, []string{"t"}); err == nil {
		t.Fatal("Snapshot succeeded against a black hole")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the first call took %v, want at most the call deadline (250ms)", took)
	}
	start = time.Now()
	for range 100 {
		if _, ok := c.Get(ctx, "k"); ok {
			t.Fatal("a hit from a black hole")
		}
	}
	err = c.Invalidate(ctx, []string{"t"})
	if took := time.Since(start); !errors.Is(err, cache.ErrUnavailable) || took > 100*time.Millisecond {
		t.Fatalf("100 reads and a write took %v (%v), want them refused at once", took, err)
	}
	if g.Pending() != 1 {
		t.Fatalf("%d bumps pending, want the write's", g.Pending())
	}
}
