package invoke

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

// Invocation is one call of a route, from whichever edge: what the edge
// read from its request, and what every stage needs.
type Invocation struct {
	Path   Path
	Method string // upper case; HEAD is run as GET
	// Body is validated JSON, or empty. When ReadBody is set, the body is
	// read by it once the caller is checked (REST reads no body for a
	// refused caller); otherwise Body came whole with the request and is
	// checked as REST checks one.
	Body     []byte
	ReadBody func(maxBytes int64, maxDepth int) (body []byte, status int, err *status.Error)
	Query    url.Values

	Authorization, APIKey string // the credentials, as REST's headers

	RequestID, IdempotencyKey string
	TraceParent, TraceState   string
	Timeout                   time.Duration // what the client asked for; 0: the route's
	NoCache                   bool          // Cache-Control: no-cache (honoured for admins)

	// Record is the request's observation record; nil: not observed.
	Record *observe.Record

	scopeID  string // the Idempotency-Key scope's id, when the gateway applies the key
	prepared        // the route and the caller, once resolved and authorized (prepare)

	settled bool // the core holds nothing of it past Invoke (Settled)
}

// Settled reports whether the core holds nothing of in past Invoke (a
// read the in-process cache answered): its edge may then reuse it.
func (in *Invocation) Settled() bool { return in.settled }

// Invoked makes r the invocation's record, and tells it what the
// invocation says about itself.
func (in *Invocation) Invoked(ctx context.Context, r *observe.Record) {
	in.Record = r
	r.Invoked(ctx, in.Path.version, in.RequestID, in.TraceParent)
}

// takeBody is the body stage: a body read by the edge after the caller
// was checked, or one that came whole, is held to the configuration's
// size and depth limits. ok is false with the refusal.
func takeBody(t *Table, in *Invocation) (a Answer, ok bool) {
	limit, depth := t.cfg.HTTP.MaxBodyBytes, t.cfg.HTTP.MaxJSONDepth
	if in.ReadBody != nil {
		body, status, err := in.ReadBody(limit, depth)
		if err != nil {
			return Answer{Status: status, Err: err}, false
		}
		in.Body = body
		return Answer{}, true
	}
	if len(in.Body) == 0 {
		return Answer{}, true
	}
	if int64(len(in.Body)) > limit {
		return Answer{Status: StatusTooLarge, Err: BodyTooLarge(limit)}, false
	}
	if e := CheckJSON(in.Body, depth); e != nil {
		return Failed(e), false
	}
	return Answer{}, true
}

// route runs a prepared route: a pipeline, a write, or a read from the
// cache, coalesced with identical reads in flight, or by the service; a
// successful write invalidates the reads it may have changed.
func (c *Core) route(ctx context.Context, t *Table, in *Invocation) Answer {
	route := in.route
	body := in.Body
	if route.List && len(body) == 0 {
		qb, qerr := queryBody(in.Query)
		if qerr != nil {
			return Failed(qerr)
		}
		body = qb
	}
	client := t.clients[route.Service]
	info, known := client.Action(route.Action)
	if known && info.Read && len(route.Pipeline) == 0 {
		// A read makes the route's context only when the cache does not
		// answer it.
		return c.reads.read(ctx, t, in, body, info, false)
	}
	ctx, cancel := routeContext(ctx, in)
	defer cancel()

	if len(route.Pipeline) > 0 {
		sc := &scope{version: in.version.Name, resource: in.resource.Name, id: in.id, body: decodeJSON(body), caller: in.principal, idempotencyKey: in.IdempotencyKey, scopeID: in.scopeID, obs: in.Record}
		result, err := (pipeline{clients: t.clients, logger: t.logger}).run(ctx, route, sc)
		// Even a failed pipeline may have written (and undone) something.
		c.writes.invalidate(ctx, in, pipelineWrites(t, route), result)
		if err != nil {
			return t.serviceFailed(err)
		}
		return succeeded(in, result)
	}

	if !known {
		info = c.describe(ctx, client, route.Service, route.Action)
	}
	if !info.Read {
		result, err := client.Request(ctx, route.Action, in.id, body)
		// A failed write may have happened all the same (a timeout).
		c.writes.invalidate(ctx, in, nil, result)
		if err != nil {
			return t.serviceFailed(status.AsError(err))
		}
		return succeeded(in, result)
	}
	return c.reads.read(ctx, t, in, body, info, true)
}

// routeContext is the context a route runs in: the route's timeout (or
// the client's, when shorter) and the frame meta the services get.
func routeContext(ctx context.Context, in *Invocation) (context.Context, context.CancelFunc) {
	route := in.route
	timeout := route.Timeout
	if in.Timeout > 0 && in.Timeout < timeout {
		timeout = in.Timeout
	}
	if pipelineHasUndo(route) {
		// A client must not be able to cut a compensable pipeline short at
		// a moment of its choosing: it runs to the route's own timeout.
		ctx, timeout = context.WithoutCancel(ctx), route.Timeout
	}
	ctx = caller.ContextWithMeta(ctx, socket.Meta{
		APIVersion:     in.version.Name,
		Principal:      in.principal,
		RequestID:      in.RequestID,
		IdempotencyKey: derivedKey(in.scopeID, in.IdempotencyKey, route.Action, false),
		TraceParent:    in.TraceParent,
		TraceState:     in.TraceState,
	})
	// The deadline as a value: the caller's stream expires the request,
	// so no timer is made per request unless something waits on Done.
	return caller.WithDeadline(ctx, time.Now().Add(timeout))
}

// describe waits (within ctx) for the service's catalogue, so that a read
// that comes before the first stream is up is not taken for a write: not
// cached, not coalesced, and invalidating. The callers waiting share one
// Describe.
func (c *Core) describe(ctx context.Context, client *caller.Client, service, action string) caller.ActionInfo {
	_, _, _ = c.describes.Do(ctx, service, func(ctx context.Context) (json.RawMessage, error) {
		_, err := client.Describe(ctx)
		return nil, err
	})
	info, _ := client.Action(action)
	return info
}
