package cache

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// LocalGenerations keep tag generations in this process.
type LocalGenerations struct {
	mu   sync.RWMutex // guards gens
	gens map[string]uint64
}

// NewLocalGenerations returns empty in-process generations.
func NewLocalGenerations() *LocalGenerations {
	return &LocalGenerations{gens: map[string]uint64{}}
}

// Load implements Generations.
func (l *LocalGenerations) Load(_ context.Context, tags []string) ([]uint64, error) {
	out := make([]uint64, len(tags))
	l.mu.RLock()
	for i, t := range tags {
		out[i] = l.gens[t]
	}
	l.mu.RUnlock()
	return out, nil
}

// Bump implements Generations.
func (l *LocalGenerations) Bump(_ context.Context, tags []string) error {
	l.mu.Lock()
	for _, t := range tags {
		l.gens[t]++
	}
	l.mu.Unlock()
	return nil
}

// RedisGenerations keep tag generations in Redis, shared by every gateway
// using the same server and prefix: a write through one gateway makes the
// others' entries miss before the write is answered.
type RedisGenerations struct {
	rdb    *redis.Client
	prefix string
}

// NewRedisGenerations connects to a redis:// URL. prefix namespaces the
// keys (default "streamgate:gen:").
func NewRedisGenerations(url, prefix string) (*RedisGenerations, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cache: redis URL: %w", err)
	}
	if prefix == "" {
		prefix = "streamgate:gen:"
	}
	return &RedisGenerations{rdb: redis.NewClient(opts), prefix: prefix}, nil
}

// Load implements Generations with one MGET.
func (r *RedisGenerations) Load(ctx context.Context, tags []string) ([]uint64, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = r.prefix + t
	}
	vals, err := r.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]uint64, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			_, _ = fmt.Sscan(s, &out[i])
		}
	}
	return out, nil
}

// Bump implements Generations with INCRs in one pipeline.
func (r *RedisGenerations) Bump(ctx context.Context, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range tags {
			p.Incr(ctx, r.prefix+t)
		}
		return nil
	})
	return err
}

// Close closes the Redis connection pool.
func (r *RedisGenerations) Close() error { return r.rdb.Close() }
