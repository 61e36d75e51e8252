package idempotency_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgate/streamgate/gateway/idempotency"
	"github.com/streamgate/streamgate/internal/blackhole"
)

// Against a Redis that accepts connections and never answers, every call
// fails within its deadline (it took Begin 5 s, the gateway's own bound).
func TestRedisStoreBlackholedFailsFast(t *testing.T) {
	t.Parallel()
	r, err := idempotency.NewRedis("redis://"+blackhole.Listen(t)+"/0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The caller's own bound is far longer: the store's deadline decides.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls := map[string]func() error{
		"Begin":    func() error { _, err := r.Begin(ctx, "id", "fp", time.Minute); return err },
		"Complete": func() error { return r.Complete(ctx, "id", "tok", idempotency.Answer{Status: 200}, time.Minute) },
		"Release":  func() error { return r.Release(ctx, "id", "tok") },
		"Ping":     func() error { return r.Ping(ctx) },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if took := time.Since(start); err == nil || took > time.Second {
			t.Errorf("%s: %v after %v, want an error within the call deadline (250ms)", name, err, took)
		}
	}
}

// Every key the store writes expires: a lease after its lease time, an
// answer after its TTL.
func TestRedisStoreKeysExpire(t *testing.T) {
	url := os.Getenv("STREAMGATE_TEST_REDIS")
	if url == "" {
		t.Skip("STREAMGATE_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the Redis tests")
	}
	t.Parallel()
	prefix := "streamgate:test:idem:" + t.Name() + ":" + time.Now().Format("150405.000000000") + ":"
	r, err := idempotency.NewRedis(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	defer rdb.Del(ctx, prefix+"id")
	b, err := r.Begin(ctx, "id", "fp", time.Minute)
	if err != nil || b.Outcome != idempotency.Acquired {
		t.Fatalf("Begin: %+v, %v", b, err)
	}
	if ttl := rdb.PTTL(ctx, prefix+"id").Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("lease TTL %v, want in (0, 1m]", ttl)
	}
	if err := r.Complete(ctx, "id", b.Token, idempotency.Answer{Status: 200, Body: []byte(`{}`)}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, prefix+"id").Val(); ttl <= time.Minute || ttl > time.Hour {
		t.Errorf("answer TTL %v, want in (1m, 1h]", ttl)
	}
}
