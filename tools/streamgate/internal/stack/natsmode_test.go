package stack_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgate/streamgate/tools/internal/polyglottest"
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
func onNATS(t testing.TB, o *stack.Options) func() {
	t.Helper()
	spec := os.Getenv(envStackNATS)
	if spec == "" || o.NATS != "" {
		return nil
	}
	if os.Getenv(polyglottest.Env) == "1" {
		t.Skipf("%s and %s=1: the Node and Python services have no NATS transport", envStackNATS, polyglottest.Env)
	}
	if os.Getenv(envRedis) == "" {
		t.Skipf("%s is set but %s is not: the two gateways on NATS share Redis", envStackNATS, envRedis)
	}
	o.NATS, o.Gateways = spec, 2
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
