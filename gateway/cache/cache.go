// Package cache is the gateway's response cache for reads: bounded memory
// (an otter W-TinyLFU cache weighed in bytes), per-entry TTLs with jitter,
// and invalidation by tags whose generations live in the process or, when
// several gateways run, in Redis.
//
//	c := cache.New(64<<20, cache.NewLocalGenerations())
//	gens, _ := c.Snapshot(ctx, tags)             // before asking the service
//	c.Put(key, tags, gens, result, nil, 30*time.Second)
//	e, ok := c.Get(ctx, key)                     // a write's Invalidate(tags) makes it miss
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// Entry is a cached answer: a result, or a NOT_FOUND error.
type Entry struct {
	Result json.RawMessage
	Err    *status.Error
	// ETag is the strong entity tag of Result.
	ETag string
	// Envelope is a result's standard envelope ({"ok":true,"result":…}),
	// encoded once when stored; Result is within it. nil for an error.
	Envelope []byte
	// ETagValues is ETag as a header's values, made once: shared by every
	// answer from the entry, never modified.
	ETagValues []string
	// Expires is when the entry stops being served.
	Expires time.Time

	tags []string
	gens []uint64
	src  *source // the generations gens came from
}

// Generations hold a counter per tag; bumping a tag's counter makes every
// entry filled under the old value miss.
type Generations interface {
	// Load returns the tags' current generations, in order.
	Load(ctx context.Context, tags []string) ([]uint64, error)
	// Bump advances the tags' generations.
	Bump(ctx context.Context, tags []string) error
}

// Cache is safe for concurrent use.
type Cache struct {
	store *otter.Cache[string, *Entry]
	gens  atomic.Pointer[source] // replaced by SetGenerations while requests run
}

// source holds the generations in use; entries remember theirs by pointer.
type source struct{ Generations }

// New returns a cache whose entries (keys, answers and what the cache
// keeps beside them) take at most maxBytes of memory.
func New(maxBytes int64, gens Generations) *Cache {
	store := otter.Must(&otter.Options[string, *Entry]{
		MaximumWeight: uint64(max(maxBytes, 1)),
		Weigher:       weigh,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *Entry]) time.Duration {
			return max(time.Until(e.Value.Expires), time.Millisecond)
		}),
		// Maintenance runs on the caller: the cache starts no goroutines.
		Executor: func(fn func()) { fn() },
	})
	c := &Cache{store: store}
	c.gens.Store(&source{gens})
	return c
}

// entryOverhead is what an entry costs besides its variable parts: the
// Entry itself, the slice headers and allocation rounding of its tags and
// generations and of its ETag's header values, and the cache's node,
// table slot and sketch share for it (measured by
// TestMemoryStaysUnderTheBound).
const entryOverhead = 448

// weigh estimates the heap an entry holds: everything it references.
func weigh(k string, e *Entry) uint32 {
	body := cap(e.Result)
	if e.Envelope != nil {
		body = cap(e.Envelope) // Result is within it
	}
	w := len(k) + body + len(e.ETag) + 8*len(e.gens) + entryOverhead
	for _, t := range e.tags {
		w += len(t) + 16
	}
	if e.Err != nil {
		w += 96 + len(e.Err.Message) // the error, its message and details
	}
	return uint32(min(w, 1<<31))
}

// Generations returns the cache's generations.
func (c *Cache) Generations() Generations { return c.gens.Load().Generations }

// SetGenerations switches the generations (a reload changed the Redis
// server); entries filled under other generations miss.
func (c *Cache) SetGenerations(g Generations) { c.gens.Store(&source{g}) }

// Snapshot returns the tags' generations now; pass them to Put so that a
// write that lands while the read is in flight makes the answer miss.
func (c *Cache) Snapshot(ctx context.Context, tags []string) ([]uint64, error) {
	return c.gens.Load().Load(ctx, tags)
}

// Get returns a fresh entry for key: not expired and not invalidated since
// it was filled.
func (c *Cache) Get(ctx context.Context, key string) (*Entry, bool) {
	e, ok := c.store.GetIfPresent(key)
	src := c.gens.Load()
	if !ok || time.Now().After(e.Expires) || e.src != src {
		return nil, false
	}
	if local, ok := src.Generations.(*LocalGenerations); ok {
		if !local.current(e.tags, e.gens) {
			c.store.Invalidate(key)
			return nil, false
		}
		return e, true
	}
	now, err := src.Load(ctx, e.tags)
	if err != nil || !slices.Equal(now, e.gens) {
		if err == nil {
			c.store.Invalidate(key)
		}
		return nil, false
	}
	return e, true
}

// InProcess reports whether the cache's generations live in this process:
// Get then never waits on I/O.
func (c *Cache) InProcess() bool {
	_, ok := c.gens.Load().Generations.(*LocalGenerations)
	return ok
}

// Put stores an answer for ttl (±10% jitter, so keys filled together do
// not expire together), at most the generations' MaxEntryTTL when they
// have one (RedisGenerations). Only results and NOT_FOUND errors are stored; a
// NOT_FOUND for at most 2s, to stop lookups that always miss from
// hammering a service without hiding a create for long.
func (c *Cache) Put(key string, tags []string, gens []uint64, result json.RawMessage, err *status.Error, ttl time.Duration) {
	if ttl <= 0 || len(gens) != len(tags) {
		return
	}
	ttl = time.Duration(float64(ttl) * (0.9 + 0.2*rand.Float64()))
	src := c.gens.Load()
	if b, ok := src.Generations.(interface{ MaxEntryTTL() time.Duration }); ok {
		ttl = min(ttl, b.MaxEntryTTL()) // generations that expire bound the entries filled under them
	}
	if err != nil {
		if err.Code != socket.CodeNotFound {
			return
		}
		ttl = min(ttl, NotFoundTTL) // after the jitter: a cap is a cap
	}
	e := &Entry{Result: result, Err: err, ETag: ETag(result), Expires: time.Now().Add(ttl), tags: tags, gens: gens, src: src}
	e.ETagValues = []string{e.ETag}
	if err == nil {
		e.Envelope, e.Result = envelope.EncodeResult(result)
	}
	c.store.Set(key, e)
}

// NotFoundTTL caps how long a NOT_FOUND answer is cached.
const NotFoundTTL = 2 * time.Second

// Invalidate makes every entry tagged with any of tags miss, here and in
// every gateway sharing the generations.
func (c *Cache) Invalidate(ctx context.Context, tags []string) error {
	return c.gens.Load().Bump(ctx, tags)
}

// Close stops the cache's expiry goroutine.
func (c *Cache) Close() { c.store.StopAllGoroutines() }

// Size returns the number of entries and their weight in bytes.
func (c *Cache) Size() (entries int, bytes uint64) {
	return c.store.EstimatedSize(), c.store.WeightedSize()
}

// ETag returns the strong entity tag of a result.
func ETag(result []byte) string {
	sum := sha256.Sum256(result)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}
