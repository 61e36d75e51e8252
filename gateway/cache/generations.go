package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgate/streamgate/internal/redisclient"
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

// current reports whether the tags' generations are still gens, without
// allocating (Cache.Get's check of an entry).
func (l *LocalGenerations) current(tags []string, gens []uint64) bool {
	if len(tags) != len(gens) {
		return false
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	for i, t := range tags {
		if l.gens[t] != gens[i] {
			return false
		}
	}
	return true
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
//
// Every call is bounded by a short deadline (WithRedisTimeout). A call
// that finds Redis unreachable marks it down for a moment: calls then
// fail at once (ErrUnavailable) rather than each waiting out the
// deadline, and one call at a time probes again. A Bump that fails is
// kept and retried in the background until it lands (or until no entry
// filled before it can still be alive anywhere); until then Load fails,
// so this cache never serves what that write changed.
//
// Keys expire (WithGenerationTTL) after their last bump. A key is
// created at Redis's clock in microseconds, not at 1, so a key that
// expired and is bumped again never repeats a value it had; and entries
// live at most half the keys' TTL (MaxEntryTTL), so no entry filled when
// a key was absent (generation 0) outlives the key a later bump creates.
type RedisGenerations struct {
	rdb     *redis.Client
	prefix  string
	timeout time.Duration // bounds each call
	ttl     time.Duration // of each key, from its last bump

	// downUntil is when calls try Redis again after a failure (unix
	// nanoseconds); 0 while Redis answers.
	downUntil atomic.Int64

	mu       sync.Mutex         // guards pending, seq and retrying
	pending  map[string]pending // tags whose bump has not landed yet
	seq      uint64             // counts keep's calls
	retrying bool               // the retry goroutine runs
	closed   chan struct{}      // closed by Close: ends the retry goroutine
	wg       sync.WaitGroup     // the retry goroutine
}

// pending is a tag's bump not landed yet: the latest keep that asked for
// it, and when.
type pending struct {
	seq uint64
	at  time.Time
}

// ErrUnavailable is the error of calls made while Redis is marked down
// after a failure.
var ErrUnavailable = errors.New("cache: the generations' Redis is unavailable")

// Defaults and bounds of RedisGenerations.
const (
	// DefaultGenerationTTL is how long a tag's generation key lives after
	// its last bump.
	DefaultGenerationTTL = 24 * time.Hour
	// downFor is how long calls fail at once after a failure, before one
	// tries Redis again.
	downFor = 500 * time.Millisecond
	// maxPending bounds the bumps kept for retry; beyond it, a write's
	// bump is lost and entries it concerns stay until their TTL.
	maxPending = 10_000
)

// RedisOption tunes RedisGenerations.
type RedisOption func(*RedisGenerations)

// WithRedisTimeout bounds each call to Redis. Default 250ms.
func WithRedisTimeout(d time.Duration) RedisOption {
	return func(r *RedisGenerations) {
		if d > 0 {
			r.timeout = d
		}
	}
}

// WithGenerationTTL sets how long a tag's generation key lives after its
// last bump; cache entries live at most half of it. Default
// DefaultGenerationTTL.
func WithGenerationTTL(d time.Duration) RedisOption {
	return func(r *RedisGenerations) {
		if d > 0 {
			r.ttl = d
		}
	}
}

// NewRedisGenerations connects to a redis:// URL. prefix namespaces the
// keys (default "streamgate:gen:").
func NewRedisGenerations(url, prefix string, opts ...RedisOption) (*RedisGenerations, error) {
	if prefix == "" {
		prefix = "streamgate:gen:"
	}
	r := &RedisGenerations{prefix: prefix, timeout: redisclient.DefaultTimeout, ttl: DefaultGenerationTTL, pending: map[string]pending{}, closed: make(chan struct{})}
	for _, o := range opts {
		o(r)
	}
	rdb, err := redisclient.New(url, r.timeout)
	if err != nil {
		return nil, fmt.Errorf("cache: redis URL: %w", err)
	}
	r.rdb = rdb
	return r, nil
}

// MaxEntryTTL is the longest a cache entry using these generations may
// live: half the keys' TTL.
func (r *RedisGenerations) MaxEntryTTL() time.Duration { return r.ttl / 2 }

// call runs fn under the call deadline, unless Redis is marked down; it
// marks Redis down or up by the outcome.
func (r *RedisGenerations) call(ctx context.Context, fn func(context.Context) error) error {
	if until := r.downUntil.Load(); until != 0 {
		now := time.Now().UnixNano()
		// One caller at a time tries again; the others fail at once.
		if now < until || !r.downUntil.CompareAndSwap(until, now+int64(downFor)) {
			return ErrUnavailable
		}
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := fn(cctx)
	switch {
	case redisclient.Answered(err):
		r.downUntil.Store(0)
	case ctx.Err() == nil: // not the caller giving up
		r.downUntil.Store(time.Now().Add(downFor).UnixNano())
	}
	return err
}

// Load implements Generations with one MGET, after the bumps still
// pending.
func (r *RedisGenerations) Load(ctx context.Context, tags []string) ([]uint64, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = r.prefix + t
	}
	var vals []any
	err := r.call(ctx, func(ctx context.Context) error {
		if err := r.flush(ctx); err != nil {
			return err
		}
		var err error
		vals, err = r.rdb.MGet(ctx, keys...).Result()
		return err
	})
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

// bumpScript advances each key's generation and sets its TTL (ARGV[1],
// milliseconds). A missing key starts at Redis's clock in microseconds,
// above every value a key of that name had before it expired.
var bumpScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then
    redis.call('INCR', k)
  else
    local t = redis.call('TIME')
    redis.call('SET', k, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  redis.call('PEXPIRE', k, ARGV[1])
end
return #KEYS
`)

// Bump implements Generations with one script. When it fails, the bump
// is kept and retried in the background, and Load fails until it lands.
func (r *RedisGenerations) Bump(ctx context.Context, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	if err := r.keep(tags); err != nil {
		r.retry() // what was kept still lands
		return err
	}
	err := r.call(ctx, r.flush)
	if err != nil {
		r.retry()
	}
	return err
}

// keep adds tags to the pending bumps. A tag already pending is marked
// again, so that a flush that read it before is not taken for this
// write's bump (it may have run before the write).
func (r *RedisGenerations) keep(tags []string) error {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	for _, t := range tags {
		if _, ok := r.pending[t]; !ok && len(r.pending) >= maxPending {
			return errors.New("cache: too many invalidations pending while Redis is unavailable; some are lost")
		}
		r.pending[t] = pending{seq: r.seq, at: now}
	}
	return nil
}

// flush bumps the pending tags and forgets those it bumped. A bump older
// than the longest an entry lives is dropped: every entry it concerned
// has expired.
func (r *RedisGenerations) flush(ctx context.Context) error {
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	oldest := time.Now().Add(-r.MaxEntryTTL())
	keys := make([]string, 0, len(r.pending))
	tags := make(map[string]uint64, len(r.pending))
	for t, p := range r.pending {
		if p.at.Before(oldest) {
			delete(r.pending, t)
			continue
		}
		tags[t] = p.seq
		keys = append(keys, r.prefix+t)
	}
	r.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	if err := bumpScript.Run(ctx, r.rdb, keys, r.ttl.Milliseconds()).Err(); err != nil {
		return err
	}
	r.mu.Lock()
	for t, seq := range tags {
		if r.pending[t].seq == seq { // not kept again meanwhile
			delete(r.pending, t)
		}
	}
	r.mu.Unlock()
	return nil
}

// retry starts the goroutine that flushes the pending bumps until none
// is left or Close is called, unless it runs.
func (r *RedisGenerations) retry() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retrying {
		return
	}
	select {
	case <-r.closed:
		return
	default:
	}
	r.retrying = true
	r.wg.Go(func() {
		wait := downFor
		for {
			select {
			case <-r.closed:
				return
			case <-time.After(wait):
			}
			err := r.call(context.Background(), r.flush)
			r.mu.Lock()
			if err == nil && len(r.pending) == 0 {
				r.retrying = false
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
			wait = min(2*wait, 5*time.Second)
		}
	})
}

// Pending returns how many tags' bumps have not landed yet.
func (r *RedisGenerations) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Ping checks that Redis answers within the call deadline, whether or
// not it is marked down.
func (r *RedisGenerations) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.rdb.Ping(ctx).Err()
}

// Close stops the retries and closes the Redis connection pool.
func (r *RedisGenerations) Close() error {
	r.mu.Lock()
	select {
	case <-r.closed:
	default:
		close(r.closed)
	}
	r.mu.Unlock()
	r.wg.Wait()
	return r.rdb.Close()
}
