package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/observe"
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
	obs                       *observe.Record // the request's record, for its observers
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
// read. A refused caller's prepared still names the route and whom the
// credentials proved, if anyone, for the access log.
func (g *Gateway) prepare(t *table, in *invocation) (prepared, *answer) {
	if e := in.path.checkText(); e != nil {
		a := failed(e)
		return prepared{}, &a
	}
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
		return prepared{resolved: rr, principal: principal}, &a // resolved: the refusal counts under its route; principal: for the access log
	}
	return prepared{resolved: rr, principal: principal}, nil
}

// call runs an invocation whose body came whole with the request
// (GatewayService.Invoke, a WebSocket request frame) exactly as a REST
// request runs: the route and the caller are checked first, then the body
// as REST checks one, then the route runs. It notes the outcome in the
// request's record (in.obs).
func (g *Gateway) call(ctx context.Context, t *table, in *invocation) answer {
	prep, refused := g.prepare(t, in)
	if prep.route != nil {
		in.obs.Resolve(ctx, t.routeInfo(prep.resolved), prep.principal.Subject)
	}
	if refused != nil {
		refused.tell(ctx, in.obs)
		return *refused
	}
	if len(in.body) > 0 {
		var a answer
		if limit := t.cfg.HTTP.MaxBodyBytes; int64(len(in.body)) > limit {
			a = answer{status: statusTooLarge, err: bodyTooLarge(limit)}
		} else if e := checkJSON(in.body, t.cfg.HTTP.MaxJSONDepth); e != nil {
			a = failed(e)
		}
		if a.err != nil {
			a.tell(ctx, in.obs)
			return a
		}
	}
	a := g.invokeOnce(ctx, t, prep, in)
	in.obs.Ran(a.err)
	a.tell(ctx, in.obs)
	return a
}

// authorize authenticates the caller and checks an access rule.
func (g *Gateway) authorize(t *table, in *invocation, access config.Access) (socket.Principal, *socket.Error) {
	principal, present, err := authenticateAs(t, in.authorization, in.apiKey)
	if err == nil {
		err = socket.AsError(auth.Allow(access, principal, present))
	}
	if err != nil {
		return principal, err
	}
	if !present {
		principal = anonymous
	}
	return principal, nil
}

// authenticate checks credentials (an Authorization and an X-API-Key
// header's values) as every route does, whatever its access rule:
// present is false without any.
func authenticate(t *table, authorization, apiKey string) (present bool, err *socket.Error) {
	_, present, err = authenticateAs(t, authorization, apiKey)
	return present, err
}

// authenticateAs is authenticate returning whom the credentials prove.
func authenticateAs(t *table, authorization, apiKey string) (socket.Principal, bool, *socket.Error) {
	principal, present, err := t.auth.Authenticate(authorization, apiKey)
	if err == nil && present && principal.Subject == anonymous.Subject {
		err = socket.Errorf(socket.CodeUnauthenticated, "the subject %q is reserved", anonymous.Subject)
	}
	return principal, present, socket.AsError(err)
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

	if len(route.Pipeline) > 0 {
		sc := &scope{version: p.version.Name, resource: p.resource.Name, id: p.id, body: decodeJSON(body), caller: p.principal, idempotencyKey: in.idempotencyKey, scopeID: in.scopeID, obs: in.obs}
		result, err := t.runPipeline(ctx, route, sc)
		// Even a failed pipeline may have written (and undone) something.
		g.invalidate(ctx, p, in.obs, pipelineWrites(t, route), result)
		if err != nil {
			return t.serviceFailed(err)
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
		g.invalidate(ctx, p, in.obs, nil, result)
		if err != nil {
			return t.serviceFailed(socket.AsError(err))
		}
		return g.succeeded(p, result)
	}
	a := g.read(ctx, t, p, in, body, info)
	if route.List && len(in.body) == 0 && a.err != nil {
		// The body was the client's query: name its mistakes so.
		a.err = queryError(a.err)
	}
	return a
}

// describe waits (within ctx) for the service's catalogue, so that a read
// that comes before the first stream is up is not taken for a write: not
// cached, not coalesced, and invalidating. The callers waiting share one
// Describe.
func (g *Gateway) describe(ctx context.Context, client *socket.Client, service, action string) socket.ActionInfo {
	_, _, _ = g.describes.Do(ctx, service, func(ctx context.Context) (json.RawMessage, error) {
		_, err := client.Describe(ctx)
		return nil, err
	})
	info, _ := client.Action(action)
	return info
}

// serveREST serves the REST routes: every path but GatewayService's own.
// ctx is the request's, with its span; req is its record.
func (g *Gateway) serveREST(ctx context.Context, w http.ResponseWriter, r *http.Request, req *observe.Record) {
	p, status, perr := parsePath(r.Method, r.URL.EscapedPath())
	if perr != nil {
		if status == 0 {
			status = httpStatus(perr.Code)
		}
		writeEnvelope(w, status, nil, perr)
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
	in.sanitizeHints()
	if in.method == http.MethodHead {
		in.method = http.MethodGet
	}
	in.obs = req
	req.Invoked(ctx, in.path.version, in.requestID, in.traceParent)
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
	if prep.route != nil {
		req.Resolve(ctx, t.routeInfo(prep.resolved), prep.principal.Subject)
	}
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
	a := g.invokeOnce(ctx, t, prep, in)
	req.Ran(a.err)
	a.tell(ctx, req)
	if a.err != nil && a.err.Code == socket.CodeCanceled && r.Context().Err() != nil {
		return // the client is gone
	}
	writeAnswer(w, a, in)
}
