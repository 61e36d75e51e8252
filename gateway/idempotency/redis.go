package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgate/streamgate/internal/redisclient"
)

// Redis is a Store in Redis, shared by every gateway using the same server
// and prefix. A lease is one key set with SET NX PX to "L" + token +
// fingerprint; an answer replaces it, by compare-on-token, with "D" +
// fingerprint + the answer's JSON and the answer's TTL. Every key expires:
// a lease after its lease time, an answer after its TTL.
//
// Every call is bounded by a short deadline (WithTimeout): a Redis that
// accepts connections and never answers fails a call in that time.
type Redis struct {
	rdb     *redis.Client
	prefix  string
	timeout time.Duration // bounds each call
}

var _ Store = (*Redis)(nil)

// RedisOption tunes a Redis store.
type RedisOption func(*Redis)

// WithTimeout bounds each call to Redis. Default 250ms.
func WithTimeout(d time.Duration) RedisOption {
	return func(r *Redis) {
		if d > 0 {
			r.timeout = d
		}
	}
}

// NewRedis connects to a redis:// URL. prefix namespaces the keys
// (default "streamgate:idem:").
func NewRedis(url, prefix string, opts ...RedisOption) (*Redis, error) {
	if prefix == "" {
		prefix = "streamgate:idem:"
	}
	r := &Redis{prefix: prefix, timeout: redisclient.DefaultTimeout}
	for _, o := range opts {
		o(r)
	}
	rdb, err := redisclient.New(url, r.timeout)
	if err != nil {
		return nil, fmt.Errorf("idempotency: redis URL: %w", err)
	}
	r.rdb = rdb
	return r, nil
}

// Ping checks that Redis answers within the call deadline.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.rdb.Ping(ctx).Err()
}

// Close closes the connection pool.
func (r *Redis) Close() error { return r.rdb.Close() }

// The record forms: a lease and an answer.
const (
	tagLease  = "L"
	tagAnswer = "D"
	tokenLen  = 32
)

// beginScript takes the lease (SET NX PX) or returns the record and its
// remaining time.
var beginScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'acquired'}
end
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'acquired'}
end
return {v, redis.call('PTTL', KEYS[1])}
`)

// releaseScript deletes the lease ARGV[1] holds.
var releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// Begin implements Store.
func (r *Redis) Begin(ctx context.Context, id, fp string, lease time.Duration) (Begun, error) {
	token := newToken()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, err := beginScript.Run(ctx, r.rdb, []string{r.prefix + id}, tagLease+token+fp, max(lease.Milliseconds(), 1)).Slice()
	if err != nil {
		return Begun{}, err
	}
	if len(res) == 1 {
		return Begun{Outcome: Acquired, Token: token}, nil
	}
	v, _ := res[0].(string)
	ttl, _ := res[1].(int64)
	switch {
	case strings.HasPrefix(v, tagLease) && len(v) >= 1+tokenLen:
		if v[1+tokenLen:] != fp {
			return Begun{Outcome: Mismatch}, nil
		}
		return Begun{Outcome: InUse, LeaseLeft: time.Duration(max(ttl, 0)) * time.Millisecond}, nil
	case strings.HasPrefix(v, tagAnswer) && len(v) >= 1+len(fp):
		if v[1:1+len(fp)] != fp {
			return Begun{Outcome: Mismatch}, nil
		}
		var a Answer
		if err := json.Unmarshal([]byte(v[1+len(fp):]), &a); err != nil {
			return Begun{}, err
		}
		return Begun{Outcome: Done, Answer: &a}, nil
	}
	return Begun{}, errors.New("idempotency: unreadable record in Redis")
}

// Complete implements Store.
func (r *Redis) Complete(ctx context.Context, id, token string, a Answer, ttl time.Duration) error {
	rec, err := json.Marshal(a)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := completeScript.Run(ctx, r.rdb, []string{r.prefix + id}, tagLease+token, rec, max(ttl.Milliseconds(), 1)).Int64()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// completeScript replaces the lease ARGV[1] holds ("L" + token) with the
// answer, carrying the lease's fingerprint over: "D" + fingerprint +
// answer.
var completeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then
  local fp = string.sub(v, string.len(ARGV[1]) + 1)
  redis.call('SET', KEYS[1], 'D' .. fp .. ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`)

// Release implements Store.
func (r *Redis) Release(ctx context.Context, id, token string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := releaseScript.Run(ctx, r.rdb, []string{r.prefix + id}, tagLease+token).Int64()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}
