package idempotency_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/gateway/idempotency"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testStore checks the Store contract.
func testStore(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	newID := func() string {
		var b [8]byte
		_, _ = rand.Read(b[:])
		return idempotency.Scope{Key: hex.EncodeToString(b[:])}.ID()
	}

	t.Run("lease, in use, mismatch, complete, replay", func(t *testing.T) {
		id := newID()
		b, err := s.Begin(ctx, id, "fp", time.Minute)
		if err != nil || b.Outcome != idempotency.Acquired || b.Token == "" {
			t.Fatalf("first Begin: %+v %v", b, err)
		}
		if o, err := s.Begin(ctx, id, "fp", time.Minute); err != nil || o.Outcome != idempotency.InUse || o.LeaseLeft <= 0 || o.LeaseLeft > time.Minute {
			t.Fatalf("concurrent Begin: %+v %v", o, err)
		}
		if o, _ := s.Begin(ctx, id, "other", time.Minute); o.Outcome != idempotency.Mismatch {
			t.Fatalf("Begin with another fingerprint while leased: %+v", o)
		}
		if err := s.Complete(ctx, id, "not-the-token-0123456789abcdef01", idempotency.Answer{Status: 200}, time.Hour); !errors.Is(err, idempotency.ErrLeaseLost) {
			t.Fatalf("Complete with another token: %v", err)
		}
		a := idempotency.Answer{Status: 201, Location: "/v1/orders/o-1", Body: []byte(`{"ok":true,"result":{"id":"o-1"}}` + "\n")}
		if err := s.Complete(ctx, id, b.Token, a, time.Hour); err != nil {
			t.Fatal(err)
		}
		o, err := s.Begin(ctx, id, "fp", time.Minute)
		if err != nil || o.Outcome != idempotency.Done || o.Answer.Status != 201 || o.Answer.Location != a.Location || string(o.Answer.Body) != string(a.Body) {
			t.Fatalf("Begin after Complete: %+v %v", o, err)
		}
		if o, _ := s.Begin(ctx, id, "other", time.Minute); o.Outcome != idempotency.Mismatch {
			t.Fatalf("Begin with another fingerprint after Complete: %+v", o)
		}
		if err := s.Release(ctx, id, b.Token); !errors.Is(err, idempotency.ErrLeaseLost) {
			t.Fatalf("Release of a completed key: %v", err)
		}
	})

	t.Run("release lets a retry run", func(t *testing.T) {
		id := newID()
		b, _ := s.Begin(ctx, id, "fp", time.Minute)
		if err := s.Release(ctx, id, b.Token); err != nil {
			t.Fatal(err)
		}
		if o, err := s.Begin(ctx, id, "fp", time.Minute); err != nil || o.Outcome != idempotency.Acquired || o.Token == b.Token {
			t.Fatalf("Begin after Release: %+v %v", o, err)
		}
	})

	t.Run("an expired lease frees itself", func(t *testing.T) {
		id := newID()
		b, _ := s.Begin(ctx, id, "fp", time.Millisecond)
		end := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			o, err := s.Begin(ctx, id, "fp", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if o.Outcome == idempotency.Acquired {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("the lease did not expire: %+v", o)
			}
			<-tick.C
		}
		if err := s.Complete(ctx, id, b.Token, idempotency.Answer{Status: 200}, time.Hour); !errors.Is(err, idempotency.ErrLeaseLost) {
			t.Fatalf("Complete by the expired lease's holder: %v", err)
		}
	})

	t.Run("one of many concurrent Begins acquires", func(t *testing.T) {
		id := newID()
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[idempotency.Outcome]int{}
		for range 32 {
			wg.Go(func() {
				o, err := s.Begin(ctx, id, "fp", time.Minute)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				got[o.Outcome]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if got[idempotency.Acquired] != 1 || got[idempotency.InUse] != 31 {
			t.Fatalf("outcomes %v", got)
		}
	})
}

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	m := idempotency.NewMemory(1000, 1<<20)
	defer m.Close()
	testStore(t, m)
}

func TestMemoryLeasesAreBounded(t *testing.T) {
	t.Parallel()
	m := idempotency.NewMemory(2, 1<<20)
	defer m.Close()
	ctx := context.Background()
	for i := range 2 {
		if b, err := m.Begin(ctx, idempotency.Scope{Key: string(rune('a' + i))}.ID(), "fp", time.Minute); err != nil || b.Outcome != idempotency.Acquired {
			t.Fatal(b, err)
		}
	}
	// A lease is never evicted: the third waits for a slot, refused.
	if _, err := m.Begin(ctx, idempotency.Scope{Key: "c"}.ID(), "fp", time.Minute); err == nil {
		t.Fatal("a third lease was taken beyond the bound")
	}
}

func TestRedisStore(t *testing.T) {
	url := os.Getenv("STREAMGATE_TEST_REDIS")
	if url == "" {
		t.Skip("STREAMGATE_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the Redis tests")
	}
	t.Parallel()
	r, err := idempotency.NewRedis(url, "streamgate:test:idem:")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	testStore(t, r)
}

func TestRedisStoreUnreachable(t *testing.T) {
	t.Parallel()
	r, err := idempotency.NewRedis("redis://127.0.0.1:1/0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Begin(context.Background(), "id", "fp", time.Second); err == nil {
		t.Fatal("Begin succeeded against an unreachable Redis")
	}
	if _, err := idempotency.NewRedis("http://not-redis", ""); err == nil {
		t.Fatal("NewRedis accepted a non-Redis URL")
	}
}
