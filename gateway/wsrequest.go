package gateway

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/actionroute"
	"github.com/streamgate/streamgate/services/socket"
)

// startRequest runs a request frame in a goroutine of its own (see run).
func (c *wsConn) startRequest(f *clientFrame) {
	_ = c.run(f, func(ctx context.Context) answer { return c.serveRequest(ctx, f) }, nil)
}

// run serves a frame that is answered by id (a request, a subscribe) in
// a goroutine of its own, within the socket's in-flight bound; its answer
// is queued when it finishes, so answers come back out of order; then
// answered, if not nil, runs. It reports whether serve runs (false: the
// frame was refused with an answer of its own).
func (c *wsConn) run(f *clientFrame, serve func(ctx context.Context) answer, answered func(answer)) bool {
	refuse := func(status int, e *socket.Error) {
		c.send(responseFrame(f.ID, answer{status: status, err: e}))
	}
	select {
	case c.slots <- struct{}{}:
	default:
		refuse(http.StatusTooManyRequests, socket.Errorf(socket.CodeResourceExhausted, "more than %d requests in flight on this socket", c.limits.InFlight).
			WithDetails(map[string]any{socket.DetailReason: reasonTooManyInFlight}))
		return false
	}
	c.mu.Lock()
	_, dup := c.inflight[f.key]
	if c.draining || dup {
		c.mu.Unlock()
		<-c.slots
		if dup {
			refuse(http.StatusBadRequest, socket.Errorf(socket.CodeInvalidArgument, "a request with id %s is in flight on this socket", f.key).
				WithDetails(map[string]any{socket.DetailReason: reasonDuplicateID}))
			return false
		}
		refuse(http.StatusServiceUnavailable, socket.Errorf(socket.CodeUnavailable, "the gateway is draining: reconnect").
			WithDetails(map[string]any{socket.DetailReason: socket.ReasonDraining}))
		return false
	}
	ctx, cancel := context.WithCancel(c.ctx)
	c.inflight[f.key] = cancel
	c.handlers.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.handlers.Done()
		defer func() {
			cancel()
			c.mu.Lock()
			delete(c.inflight, f.key)
			c.mu.Unlock()
			<-c.slots
		}()
		a := c.recovered(func() answer { return serve(ctx) })
		c.send(responseFrame(f.ID, a))
		if answered != nil {
			answered(a)
		}
	}()
	return true
}

// recovered runs serve, turning a panic into an INTERNAL answer.
func (c *wsConn) recovered(serve func() answer) (a answer) {
	defer func() {
		if p := recover(); p != nil {
			c.g.opts.logger.Error("gateway: panic serving a socket frame", "panic", p, "version", c.version)
			a = failed(socket.Errorf(socket.CodeInternal, "internal error"))
		}
	}()
	return serve()
}

// serveRequest runs one request frame through the REST dispatcher (the
// same route table, access rules, pipelines, cache, coalescing,
// idempotency and limits) with the socket's credentials: the frame is a
// request of its own for the observers.
func (c *wsConn) serveRequest(ctx context.Context, f *clientFrame) answer {
	t := c.g.acquire()
	defer t.release()
	in, status, ferr := c.invocation(t, f)
	r := c.g.obs.newRequest(protocolWebSocket, in.method)
	if in.path.version == "" {
		r.path = f.Path
	}
	ctx = r.begin(ctx)
	defer r.end(ctx)
	r.invoked(ctx, in)
	if ferr != nil {
		a := answer{status: status, err: ferr}
		if status == 0 {
			a = failed(ferr)
		}
		r.answer(ctx, a)
		return a
	}
	return c.g.call(ctx, t, in)
}

// invocation turns a request frame into the invocation REST would make:
// the path form's path is relative to the socket's version; the action
// form's action is sent by the version's route that sends it (the one
// `streamgate call -gateway` finds).
func (c *wsConn) invocation(t *table, f *clientFrame) (*invocation, int, *socket.Error) {
	creds := c.credentials()
	in := &invocation{
		method:         f.Method,
		authorization:  creds.authorization,
		apiKey:         creds.apiKey,
		requestID:      newRequestID(),
		idempotencyKey: f.IdempotencyKey,
	}
	in.sanitizeHints()
	if ms, _ := timeoutOf(f.TimeoutMS); ms > 0 {
		in.timeout = time.Duration(ms) * time.Millisecond
	}
	if b := bytes.TrimSpace(f.Body); len(b) > 0 && string(b) != "null" {
		in.body = b
	}
	if f.Action != "" {
		return in, 0, c.actionPath(t, f, in)
	}
	u, err := url.Parse(f.Path)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return in, 0, socket.Errorf(socket.CodeInvalidArgument, "path %q is not a path relative to the version, such as /users/1", f.Path)
	}
	p, status, perr := parsePath(in.method, "/"+url.PathEscape(c.version)+u.EscapedPath())
	if perr != nil {
		return in, status, perr
	}
	in.path, in.query = p, u.Query()
	if in.method == http.MethodHead {
		in.method = http.MethodGet
	}
	return in, 0, nil
}

// actionPath resolves the action form: the method and path of the
// version's route that sends the action.
func (c *wsConn) actionPath(t *table, f *clientFrame, in *invocation) *socket.Error {
	id := ""
	if len(f.ResourceID) > 0 && string(f.ResourceID) != "null" {
		_, id, _ = frameID(f.ResourceID)
	}
	target, ok := actionroute.Find(t.actionRoutes(c.version), "", f.Action, id != "")
	switch {
	case !ok:
		return socket.Errorf(socket.CodeNotFound, "API version %s has no route for action %s", c.version, f.Action).
			WithDetails(map[string]any{"version": c.version, "action": f.Action})
	case target.Item && id == "":
		return socket.Errorf(socket.CodeInvalidArgument, "action %s needs a resource_id", f.Action)
	case !target.Item && id != "":
		return socket.Errorf(socket.CodeInvalidArgument, "action %s takes no resource_id", f.Action)
	case id != "" && !validID(id):
		return socket.Errorf(socket.CodeInvalidArgument, "resource_id %q is not a valid resource id", id)
	}
	in.method = target.Method
	in.path = restPath{version: c.version, resource: target.Resource, id: id, segment: target.Segment}
	return nil
}

// actionRoutes lists a version's single-action routes in ListRoutes'
// order (by path, then method), for actionroute.Find; cached per table.
func (t *table) actionRoutes(version string) []actionroute.Route {
	if r, ok := t.actions.Load(version); ok {
		return r.([]actionroute.Route)
	}
	var out []actionroute.Route
	if v := t.cfg.Versions[version]; v != nil {
		out = versionActionRoutes(v)
	}
	t.actions.Store(version, out)
	return out
}

func versionActionRoutes(v *config.Version) []actionroute.Route {
	var out []actionroute.Route
	for _, res := range v.Resources {
		for _, rt := range res.Routes {
			if len(rt.Pipeline) == 0 {
				out = append(out, actionroute.Route{Method: rt.Method, Path: routePath(v.Name, res.Name, rt), Service: rt.Service, Action: rt.Action})
			}
		}
	}
	slices.SortFunc(out, func(a, b actionroute.Route) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return out
}
