package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/gateway/cache"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
)

// invocation is one call of a route, from the REST edge or from
// GatewayService.Invoke.
type invocation struct {
	path   restPath
	method string
	body   []byte // validated JSON, or empty
	query  url.Values

	authorization, apiKey string

	requestID, idempotencyKey string
	scopeID                   string // the Idempotency-Key scope's id, when the gateway applies the key
	traceParent, traceState   string
	timeout                   time.Duration // what the client asked for; 0: the route's
	noCache                   bool          // Cache-Control: no-cache (honoured for admins)
	ifNoneMatch               string
}

// answer is an invocation's outcome, ready for either edge.
type answer struct {
	status       int
	result       json.RawMessage
	err          *socket.Error
	allow        []string // for 405
	location     string   // for 201
	etag         string   // for cacheable reads
	cacheControl string
	xCache       string // hit, miss, coalesced or bypass
	envelope     []byte // a replayed answer's body, as first sent
	replayed     bool   // an Idempotency-Key replay
	retryAfter   int    // seconds, for Retry-After (409 idempotency_key_in_use)
}

func failed(err *socket.Error) answer {
	return answer{status: err.Code.HTTPStatus(), err: err}
}

// anonymous is the principal forwarded for callers without credentials,
// so a service never mistakes them for the gateway's own key.
var anonymous = socket.Principal{Subject: socket.AnonymousSubject}

// prepared is a resolved, authorized invocation.
type prepared struct {
	resolved
	principal socket.Principal
}

// prepare resolves the route and checks the caller, before any body is
// read.
func (g *Gateway) prepare(t *table, in *invocation) (prepared, *answer) {
	rr, rerr := resolve(t.cfg, in.path, in.method)
	if rerr != nil {
		a := failed(rerr.err)
		if rerr.allow != nil {
			a = answer{status: statusMethodNotAllowed, err: rerr.err, allow: rerr.allow}
		}
		return prepared{}, &a
	}
	principal, err := g.authorize(t, in, rr.route.Access)
	if err != nil {
		a := failed(err)
		return prepared{}, &a
	}
	return prepared{resolved: rr, principal: principal}, nil
}

// authorize authenticates the caller and checks an access rule.
func (g *Gateway) authorize(t *table, in *invocation, access config.Access) (socket.Principal, *socket.Error) {
	principal, present, err := t.auth.Authenticate(in.authorization, in.apiKey)
	if err == nil && present && principal.Subject == anonymous.Subject {
		err = socket.Errorf(socket.CodeUnauthenticated, "the subject %q is reserved", anonymous.Subject)
	}
	if err == nil {
		err = auth.Allow(access, principal, present)
	}
	if err != nil {
		return principal, socket.AsError(err)
	}
	if !present {
		principal = anonymous
	}
	return principal, nil
}

// invoke runs a prepared route: from the cache, coalesced with identical
// reads in flight, or by the service; a successful write invalidates the
// reads it may have changed.
func (g *Gateway) invoke(ctx context.Context, t *table, p prepared, in *invocation) answer {
	route := p.route
	body := in.body
	if route.List && len(body) == 0 {
		qb, qerr := queryBody(in.query)
		if qerr != nil {
			return failed(qerr)
		}
		body = qb
	}
	timeout := route.Timeout
	if in.timeout > 0 && in.timeout < timeout {
		timeout = in.timeout
	}
	if pipelineHasUndo(route) {
		// A client must not be able to cut a compensable pipeline short at
		// a moment of its choosing: it runs to the route's own timeout.
		ctx, timeout = context.WithoutCancel(ctx), route.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx = socket.ContextWithMeta(ctx, socket.Meta{
		APIVersion:     p.version.Name,
		Principal:      p.principal,
		RequestID:      in.requestID,
		IdempotencyKey: derivedKey(in.scopeID, in.idempotencyKey, route.Action, false),
		TraceParent:    in.traceParent,
		TraceState:     in.traceState,
	})
	stats := g.stats.of(route, p.version.Name, p.resource.Name)

	if len(route.Pipeline) > 0 {
		sc := &scope{version: p.version.Name, resource: p.resource.Name, id: p.id, body: decodeJSON(body), caller: p.principal, idempotencyKey: in.idempotencyKey, scopeID: in.scopeID}
		result, err := t.runPipeline(ctx, route, sc)
		// Even a failed pipeline may have written (and undone) something.
		g.invalidate(ctx, t, p, stats, pipelineWrites(t, route), result)
		if err != nil {
			return failed(err)
		}
		return g.succeeded(p, result)
	}

	client := t.clients[route.Service]
	info, known := client.Action(route.Action)
	if !known {
		info = g.describe(ctx, client, route.Service, route.Action)
	}
	if !info.Read {
		result, err := client.Request(ctx, route.Action, p.id, body)
		// A failed write may have happened all the same (a timeout).
		g.invalidate(ctx, t, p, stats, nil, result)
		if err != nil {
			return failed(socket.AsError(err))
		}
		return g.succeeded(p, result)
	}
	return g.read(ctx, t, p, in, body, info, stats)
}

// describe waits (within ctx) for the service's catalogue, so that a read
// that comes before the first stream is up is not taken for a write: not
// cached, not coalesced, and invalidating. The callers waiting share one
// Describe.
func (g *Gateway) describe(ctx context.Context, client *socket.Client, service, action string) socket.ActionInfo {
	_, _, _ = g.flights.Do(ctx, "\x00describe\x00"+service, func(ctx context.Context) (json.RawMessage, error) {
		_, err := client.Describe(ctx)
		return nil, err
	})
	info, _ := client.Action(action)
	return info
}

// read runs a read route through the cache and the coalescer.
func (g *Gateway) read(ctx context.Context, t *table, p prepared, in *invocation, body []byte, info socket.ActionInfo, stats *routeStats) answer {
	route := p.route
	client := t.clients[route.Service]
	public := route.Caching.Visibility == config.VisibilityPublic || (route.Caching.Visibility == "" && info.Public)
	scope := ""
	if !public {
		scope = p.principal.Scope()
	}
	key := route.Service + "\x00" + socket.CoalesceKey(route.Action, p.id, body, p.version.Name, scope)
	ttl := route.CacheTTL
	if ttl == 0 {
		ttl = info.CacheTTL
	}
	bypass := in.noCache && p.principal.HasRole("admin")
	cacheable := g.cache != nil && ttl > 0 && !route.Caching.NoCache

	xcache := "miss"
	var gens []uint64
	var tags []string
	if cacheable && !bypass {
		if e, ok := g.cache.Get(ctx, key); ok {
			stats.hits.Add(1)
			a := answer{status: http.StatusOK, result: e.Result, err: e.Err, xCache: "hit"}
			if e.Err != nil {
				a.status = e.Err.Code.HTTPStatus()
			}
			return g.cacheHeaders(a, ttl, public)
		}
	}
	flightKey := key
	if g.cache != nil && !bypass {
		tags = readTags(route.Service, p.resource.Name, p.id)
		var serr error
		gens, serr = g.cache.Snapshot(ctx, tags) // nil on error: the answer is not stored
		// A read that starts after a write must not join a read that
		// started before it: the tags' generations are part of the key
		// (and travel to the service, whose coalescing uses them too).
		// Without them this read joins nothing.
		if serr != nil {
			bypass = true
		} else {
			flightKey = fmt.Sprint(key, gens)
			ctx = withEpoch(ctx, fmt.Sprint(gens))
		}
	}
	store := cacheable && gens != nil
	var hitInFlight atomic.Bool // the flight found the entry a previous flight stored
	call := func(ctx context.Context) (json.RawMessage, error) {
		if store {
			// A flight that ended between this request's lookup and its
			// flight stored its answer: use it instead of a new run.
			if e, ok := g.cache.Get(ctx, key); ok {
				hitInFlight.Store(true)
				if e.Err != nil {
					return e.Result, e.Err
				}
				return e.Result, nil
			}
		}
		result, err := client.Request(ctx, route.Action, p.id, body)
		if store {
			// Stored before the flight ends: a read that comes after it
			// finds the entry rather than starting another run.
			g.cache.Put(key, tags, gens, result, socket.AsError(err), ttl)
		}
		return result, err
	}
	var result json.RawMessage
	var err error
	if g.coalesce && !route.Caching.NoCoalesce && !bypass {
		var shared bool
		result, err, shared = g.flights.Do(ctx, flightKey, call)
		if shared {
			stats.coalesced.Add(1)
			xcache = "coalesced"
		}
	} else {
		result, err = call(ctx)
	}
	if bypass {
		xcache = "bypass"
	}
	if hitInFlight.Load() && xcache == "miss" {
		xcache = "hit"
		stats.hits.Add(1)
	}
	e := socket.AsError(err)
	if cacheable && xcache == "miss" {
		stats.misses.Add(1)
	}
	if e != nil {
		a := failed(e)
		a.xCache = xcache
		return a
	}
	a := g.succeeded(p, result)
	a.xCache = xcache
	if cacheable {
		a = g.cacheHeaders(a, ttl, public)
	}
	return a
}

// cacheHeaders adds ETag and Cache-Control to a cacheable answer.
func (g *Gateway) cacheHeaders(a answer, ttl time.Duration, public bool) answer {
	if a.err != nil {
		return a
	}
	a.etag = cache.ETag(a.result)
	visibility := "private"
	if public {
		visibility = "public"
	}
	a.cacheControl = visibility + ", max-age=" + strconv.Itoa(int(ttl.Seconds()))
	return a
}

// succeeded builds a success answer: 201 and Location for creates.
func (g *Gateway) succeeded(p prepared, result json.RawMessage) answer {
	if len(result) > 0 && !json.Valid(result) {
		return failed(socket.Errorf(socket.CodeInternal, "the service returned invalid JSON"))
	}
	a := answer{status: http.StatusOK, result: result}
	if p.route.Create {
		a.status = http.StatusCreated
		a.location = locationOf(p.version.Name, p.resource.Name, result)
	}
	return a
}

// serveREST is the dispatcher behind every /{version}/… pattern.
func (g *Gateway) serveREST(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	p, perr := parsePath(r.URL.EscapedPath())
	if perr != nil {
		writeError(w, perr)
		return
	}
	in := &invocation{
		path:           p,
		method:         r.Method,
		query:          r.URL.Query(),
		authorization:  r.Header.Get("Authorization"),
		apiKey:         r.Header.Get(headerAPIKey),
		requestID:      w.Header().Get(headerRequestID),
		idempotencyKey: r.Header.Get(headerIdempotencyKey),
		traceParent:    r.Header.Get(headerTraceParent),
		traceState:     r.Header.Get(headerTraceState),
		noCache:        strings.Contains(strings.ToLower(r.Header.Get("Cache-Control")), "no-cache"),
		ifNoneMatch:    r.Header.Get("If-None-Match"),
	}
	if in.method == http.MethodHead {
		in.method = http.MethodGet
	}
	t := g.acquire()
	defer t.release()
	if p.id == "" && p.resource == openAPIFile {
		g.serveOpenAPI(w, r, t, in)
		return
	}
	var terr *socket.Error
	if in.timeout, terr = clientTimeout(r.Header); terr != nil {
		writeError(w, terr)
		return
	}
	prep, refused := g.prepare(t, in)
	if refused != nil {
		writeAnswer(w, *refused, in)
		return
	}
	body, status, berr := readBody(r, t.cfg.HTTP.MaxBodyBytes, t.cfg.HTTP.MaxJSONDepth)
	if berr != nil {
		writeEnvelope(w, status, nil, berr)
		return
	}
	in.body = body
	a := g.invokeOnce(r.Context(), t, prep, in)
	if a.err != nil && a.err.Code == socket.CodeCanceled && r.Context().Err() != nil {
		return // the client is gone
	}
	writeAnswer(w, a, in)
}

// writeAnswer writes an answer with its headers; a matching If-None-Match
// gets 304 without a body.
func writeAnswer(w http.ResponseWriter, a answer, in *invocation) {
	h := w.Header()
	if a.allow != nil {
		h.Set("Allow", strings.Join(a.allow, ", "))
	}
	if a.location != "" {
		h.Set("Location", a.location)
	}
	if a.xCache != "" {
		h.Set("X-Cache", a.xCache)
	}
	if ra := retryAfter(a); ra > 0 {
		h.Set(headerRetryAfter, strconv.Itoa(ra))
	}
	if a.replayed {
		h.Set(headerReplayed, "true")
	}
	if a.envelope != nil {
		writeBody(w, a.status, a.envelope)
		return
	}
	if a.etag != "" {
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", a.cacheControl)
		if etagMatches(in.ifNoneMatch, a.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	writeEnvelope(w, a.status, a.result, a.err)
}

// etagMatches implements If-None-Match's comparison (weak, any listed).
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// readBody reads and checks a request body: its size is checked before
// reading (413), a non-empty body must be JSON (415), well-formed and not
// too deep (400).
func readBody(r *http.Request, maxBytes int64, maxDepth int) ([]byte, int, *socket.Error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, 0, nil
	}
	tooLarge := socket.Errorf(socket.CodeInvalidArgument, "request body is larger than %d bytes", maxBytes).
		WithDetails(map[string]any{socket.DetailReason: "body_too_large", "limit": maxBytes})
	if r.ContentLength > maxBytes {
		return nil, statusTooLarge, tooLarge
	}
	ct := r.Header.Get("Content-Type")
	if r.ContentLength > 0 && !isJSONContentType(ct) {
		return nil, statusMediaType, mediaTypeError(ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, statusTooLarge, tooLarge
	case err != nil:
		return nil, http.StatusBadRequest, socket.Errorf(socket.CodeInvalidArgument, "reading the request body failed")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, 0, nil
	}
	if !isJSONContentType(ct) {
		return nil, statusMediaType, mediaTypeError(ct)
	}
	if jerr := checkJSON(body, maxDepth); jerr != nil {
		return nil, http.StatusBadRequest, jerr
	}
	return body, 0, nil
}

func mediaTypeError(ct string) *socket.Error {
	return socket.Errorf(socket.CodeInvalidArgument, "request body must be application/json, not %q", ct).
		WithDetails(map[string]any{socket.DetailReason: "unsupported_media_type"})
}
