// Package redisclient makes the gateway's Redis clients: every call
// bounded by one short deadline, so that a Redis that accepts
// connections and never answers costs a request that deadline, not the
// client library's seconds of read timeouts and retries.
//
//	rdb, err := redisclient.New("redis://127.0.0.1:6379/0", 250*time.Millisecond)
//	ctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond) // each call's own bound
package redisclient

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds one Redis call on a request's path.
const DefaultTimeout = 250 * time.Millisecond

// New connects to a redis:// URL with dial, read, write and pool waits
// of at most timeout (DefaultTimeout when 0), and with the callers'
// context deadlines applied to the connection, retries included.
func New(url string, timeout time.Duration) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	opts.DialTimeout = timeout
	opts.ReadTimeout = timeout
	opts.WriteTimeout = timeout
	opts.PoolTimeout = timeout
	opts.ContextTimeoutEnabled = true
	return redis.NewClient(opts), nil
}

// Answered reports whether err came from the Redis server itself (a
// script error, a missing key): the server is reachable.
func Answered(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return true
	}
	var re redis.Error
	return errors.As(err, &re)
}
