package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store in Redis, shared by every gateway using the same server
// and prefix. A lease is one key set with SET NX PX to "L" + token +
// fingerprint; an answer replaces it, by compare-on-token, with "D" +
// fingerprint + the answer's JSON and the answer's TTL.
type Redis struct {
	rdb    *redis.Client
	prefix string
}

var _ Store = (*Redis)(nil)

// NewRedis connects to a redis:// URL. prefix namespaces the keys
// (default "streamgate:idem:").
func NewRedis(url, prefix string) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("idempotency: redis URL: %w", err)
	}
	if prefix == "" {
		prefix = "streamgate:idem:"
	}
	return &Redis{rdb: redis.NewClient(opts), prefix: prefix}, nil
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
	n, err := releaseScript.Run(ctx, r.rdb, []string{r.prefix + id}, tagLease+token).Int64()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}
