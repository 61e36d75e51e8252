package invoke

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/streamgate/streamgate/gateway/cache"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/internal/memo"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

// readKey names a read's answer: reads with equal keys get the same
// answer. Without an epoch it keys the cache (whose entries check their
// generations themselves); with one, the reads in flight.
type readKey struct {
	service, action, id, version string
	scope                        string // the caller's visibility scope; "" when the answer is public
	body                         []byte // JSON; compared in canonical form
	// epoch is the read's tags' generations when it started: a read that
	// starts after a write never shares a flight with one from before it.
	epoch string
}

// String encodes the key for the cache and the coalescer: the service,
// then the socket's own coalescing key of the rest. One allocation.
func (k readKey) String() string {
	b := k.appendTo(make([]byte, 0, len(k.service)+1+coalesce.KeyLen(k.action, k.id, k.body, k.version, k.scope, k.epoch)))
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is never written again
}

// appendTo appends the key's encoding (String) to b.
func (k readKey) appendTo(b []byte) []byte {
	b = append(append(b, k.service...), 0)
	return coalesce.AppendKey(b, k.action, k.id, k.body, k.version, k.scope, k.epoch)
}

// epochOf encodes tags' generations as a read's epoch.
func epochOf(gens []uint64) string {
	b := make([]byte, 0, 8*len(gens))
	for i, g := range gens {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, g, 10)
	}
	return string(b)
}

// readPlan is what one read may do. It is decided before the read runs,
// from the route, the action, the gateway's settings and the caller, and
// narrowed when the cache's generations cannot be read.
type readPlan struct {
	cacheable bool // the route's answers are cached: they carry ETag and Cache-Control
	lookup    bool // the cache may answer
	epoch     bool // the read takes its tags' generations (for its flight, its service and storing)
	coalesce  bool // the read may share one request with identical reads in flight
	store     bool // the answer may be stored
}

// reader is the read stage: the cache and the reads in flight.
type reader struct {
	cache    *cache.Cache    // nil when caching is off
	flights  *coalesce.Group // the reads in flight, by readKey
	coalesce bool            // identical reads in flight share one request

	controls memo.Map[cacheControl, []string] // Cache-Control's values, made once per TTL and visibility
	scopes   memo.Map[string, callerScope]    // callers' coalescing scopes, by subject
	keys     sync.Pool                        // *[]byte: the buffers lookups make their keys in
}

// maxPooledKey is the largest key buffer a lookup returns to the pool; a
// read with a larger body makes its own.
const maxPooledKey = 4 << 10

// cacheControl is what a cacheable answer's Cache-Control says.
type cacheControl struct {
	public  bool
	seconds int
}

// callerScope is a caller's coalescing scope (coalesce.Scope) and the
// roles it was made with.
type callerScope struct {
	roles []string
	scope string
}

// scopeOf returns the coalescing scope of a caller, made once for callers
// who come back with the same roles.
func (rd *reader) scopeOf(p socket.Principal) string {
	if s, ok := rd.scopes.Get(p.Subject); ok && slices.Equal(s.roles, p.Roles) {
		return s.scope
	} else if ok {
		return coalesce.Scope(p.Subject, p.Roles) // the subject's roles changed: the first ones stay
	}
	scope := coalesce.Scope(p.Subject, p.Roles)
	rd.scopes.Add(p.Subject, callerScope{roles: slices.Clone(p.Roles), scope: scope})
	return scope
}

// cacheControlOf returns the values of a cacheable answer's Cache-Control
// header, made once per TTL and visibility.
func (rd *reader) cacheControlOf(public bool, ttl time.Duration) []string {
	cc := cacheControl{public: public, seconds: int(ttl.Seconds())}
	if v, ok := rd.controls.Get(cc); ok {
		return v
	}
	visibility := "private"
	if public {
		visibility = "public"
	}
	v := []string{visibility + ", max-age=" + strconv.Itoa(cc.seconds)}
	rd.controls.Add(cc, v)
	return v
}

// readRun is one read of a read route: its key, its plan and what the
// cache needs to store its answer.
type readRun struct {
	rd       *reader
	t        *Table // the configuration the read runs under
	client   *caller.Client
	in       *Invocation // the read, resolved and authorized
	key      readKey
	cacheKey string // key.String() without an epoch, made when the cache had no answer
	plan     readPlan
	ttl      time.Duration
	public   bool

	outcome observe.CacheOutcome
	tags    []string // what the answer depends on (plan.epoch)
	gens    []uint64 // the tags' generations when the read started
	looked  bool     // the lookup answered: the read ran nothing else
	// found is the cache entry the read's own flight found (stored by a
	// flight that ended after this read's lookup). Atomic: the flight may
	// still run when the read gives up.
	found atomic.Pointer[cache.Entry]
}

// read runs a read route through the cache and the coalescer. routed
// reports whether ctx is the route's already (routeContext); when it is
// not, the read makes it once the cache has not answered.
func (rd *reader) read(ctx context.Context, t *Table, in *Invocation, body []byte, info caller.ActionInfo, routed bool) Answer {
	r := rd.planRead(t, in, body, info)
	a := r.run(ctx, routed)
	a.XCache = r.outcome.String()
	in.Record.Cached(observe.CacheEvent{Read: r.outcome, Cacheable: r.plan.cacheable})
	if in.route.List && len(in.Body) == 0 && a.Err != nil {
		// The body was the client's query: name its mistakes so.
		a.Err = queryError(a.Err)
	}
	if r.looked && rd.cache.InProcess() { // no flight, request or context made: nothing holds r or in
		in.settled = true
		*r = readRun{}
		readRuns.Put(r)
	}
	return a
}

// run answers the read as its plan allows, and sets its outcome.
func (r *readRun) run(ctx context.Context, routed bool) Answer {
	if !routed && r.plan.lookup && !r.rd.cache.InProcess() {
		// A lookup that may wait on the generations' server waits within
		// the route's timeout.
		var cancel context.CancelFunc
		ctx, cancel = routeContext(ctx, r.in)
		defer cancel()
		routed = true
	}
	if r.plan.lookup {
		if e, ok := r.lookup(ctx); ok {
			r.outcome, r.looked = observe.CacheHit, true
			return r.fromEntry(e)
		}
	}
	if !routed {
		var cancel context.CancelFunc
		ctx, cancel = routeContext(ctx, r.in)
		defer cancel()
	}
	if r.plan.epoch {
		ctx = r.snapshot(ctx)
	}
	var result json.RawMessage
	var err error
	if r.plan.coalesce {
		var shared bool
		result, err, shared = r.rd.flights.Do(ctx, r.key.String(), r.sharedFetch(ctx))
		if shared {
			r.outcome = observe.CacheCoalesced
		}
	} else {
		result, err = r.fetch(ctx)
	}
	found := r.found.Load() // set by this read's own flight only: never when shared
	if found != nil {
		r.outcome = observe.CacheHit
	}
	return r.answer(result, err, found)
}

// sharedFetch is the fetch a flight of identical reads runs. Its context
// has no deadline: a stream cancels the request when the last reader
// leaves. NATS carries no cancellation, only the deadline, so to a
// service on NATS the shared request carries the first reader's.
func (r *readRun) sharedFetch(ctx context.Context) func(context.Context) (json.RawMessage, error) {
	deadline, ok := ctx.Deadline()
	svc := r.t.cfg.Services[r.in.route.Service]
	if !ok || svc == nil || svc.Transport != config.TransportNATS {
		return r.fetch
	}
	return func(wctx context.Context) (json.RawMessage, error) {
		wctx, cancel := context.WithDeadline(wctx, deadline)
		defer cancel()
		return r.fetch(wctx)
	}
}

// readRuns are reads' runs, reused after the in-process cache answered
// at lookup; a run that went further may be held by its flight.
var readRuns = sync.Pool{New: func() any { return new(readRun) }}

// planRead decides what a read may do.
func (rd *reader) planRead(t *Table, in *Invocation, body []byte, info caller.ActionInfo) *readRun {
	route := in.route
	r := readRuns.Get().(*readRun)
	*r = readRun{rd: rd, t: t, client: t.clients[route.Service], in: in, ttl: route.CacheTTL}
	if r.ttl == 0 {
		r.ttl = info.CacheTTL
	}
	r.public = route.Caching.Visibility == config.VisibilityPublic || (route.Caching.Visibility == "" && info.Public)
	r.key = readKey{service: route.Service, action: route.Action, id: in.id, version: in.version.Name, body: body}
	if !r.public {
		r.key.scope = rd.scopeOf(in.principal)
	}
	r.plan.cacheable = rd.cache != nil && r.ttl > 0 && !route.Caching.NoCache
	if in.NoCache && in.principal.HasRole("admin") {
		r.outcome = observe.CacheBypass
		return r
	}
	r.plan.lookup = r.plan.cacheable
	r.plan.epoch = rd.cache != nil
	r.plan.coalesce = rd.coalesce && !route.Caching.NoCoalesce
	r.plan.store = r.plan.cacheable
	return r
}

// lookup asks the cache for the read's answer under its key (without an
// epoch) made in a pooled buffer, which Get does not keep: a hit makes no
// key of its own; a miss keeps one in cacheKey for the answer to be stored
// under. Only reads whose plan has lookup (all that store) call it.
func (r *readRun) lookup(ctx context.Context) (*cache.Entry, bool) {
	bp, _ := r.rd.keys.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := r.key.appendTo((*bp)[:0])
	e, ok := r.rd.cache.Get(ctx, unsafe.String(unsafe.SliceData(b), len(b)))
	if !ok {
		r.cacheKey = string(b)
	}
	if cap(b) <= maxPooledKey {
		*bp = b
		r.rd.keys.Put(bp)
	}
	return e, ok
}

// snapshot takes the generations of the read's tags. They become the
// read's epoch, part of its flight's key and sent to the service, whose
// coalescing uses it too. When they cannot be read, the read neither
// joins nor stores anything.
func (r *readRun) snapshot(ctx context.Context) context.Context {
	r.tags = readTags(r.in.route.Service, r.in.resource.Name, r.in.id)
	gens, err := r.rd.cache.Snapshot(ctx, r.tags)
	if err != nil {
		r.outcome = observe.CacheUnavailable
		r.plan.coalesce, r.plan.store = false, false
		return ctx
	}
	r.gens = gens
	r.key.epoch = epochOf(gens)
	return withEpoch(ctx, r.key.epoch)
}

// withEpoch marks a read with the cache generations it saw, so the
// service's own coalescing keeps reads from before and after a write apart.
func withEpoch(ctx context.Context, epoch string) context.Context {
	m := socket.MetaFrom(ctx)
	m.ReadEpoch = epoch
	return caller.ContextWithMeta(ctx, m)
}

// fetch asks the service, or the cache when a flight that ended after
// this read's lookup stored the answer; it stores what the service
// answers.
func (r *readRun) fetch(ctx context.Context) (json.RawMessage, error) {
	if r.plan.store {
		if e, ok := r.rd.cache.Get(ctx, r.cacheKey); ok {
			r.found.Store(e)
			if e.Err != nil {
				return e.Result, e.Err
			}
			return e.Result, nil
		}
	}
	route := r.in.route
	result, err := r.client.Request(ctx, route.Action, r.in.id, r.key.body)
	if r.plan.store {
		// Stored before the flight ends: a read that comes after it
		// finds the entry rather than starting another run.
		r.rd.cache.Put(r.cacheKey, r.tags, r.gens, result, status.AsError(err), r.ttl)
	}
	return result, err
}

// fromEntry answers from a cache entry, with the envelope and the ETag
// stored with it.
func (r *readRun) fromEntry(e *cache.Entry) Answer {
	a := Answer{Status: http.StatusOK, Result: e.Result, Err: e.Err}
	if e.Err != nil {
		a.Status = r.t.statusOf(e.Err)
		return a
	}
	a.Envelope, a.ETagValues = e.Envelope, e.ETagValues
	return r.cacheHeaders(a, e.ETag)
}

// answer answers with what the service, the flight or, for a hit in
// flight, the cache entry found answered.
func (r *readRun) answer(result json.RawMessage, err error, found *cache.Entry) Answer {
	var a Answer
	if e := status.AsError(err); e != nil {
		a = r.t.serviceFailed(e)
	} else {
		a = succeeded(r.in, result)
		if r.plan.cacheable && a.Err == nil {
			etag := ""
			if found != nil {
				etag = found.ETag
			} else {
				etag = cache.ETag(a.Result)
			}
			a = r.cacheHeaders(a, etag)
		}
	}
	return a
}

// cacheHeaders adds ETag and Cache-Control to a cacheable answer.
func (r *readRun) cacheHeaders(a Answer, etag string) Answer {
	a.ETag = etag
	a.CacheControlValues = r.rd.cacheControlOf(r.public, r.ttl)
	a.CacheControl = a.CacheControlValues[0]
	return a
}
