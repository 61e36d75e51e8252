package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/wsedge"
	"github.com/streamgate/streamgate/services/socket"
)

// Observation is one hook. Every edge (a REST request, a WebSocket request
// frame, a GatewayService call) makes a request record and tells the
// gateway's observers, in order, what happens to it as typed events:
//
//	begin → resolved → (stepBegan, stepEnded)* / cached / idempotency → shed → answered → end
//
// The Prometheus metrics (metrics.go), the access log (accesslog.go), the
// traces (tracing.go) and the route stats behind ListRoutes
// (routestats.go) are the observers; none of them wraps the
// ResponseWriter: the REST edge's one wrapper (statusWriter) notes the
// status written, and the record carries it to them. grpc-go's
// stats.Handler is the model; each event is a method rather than one
// method taking an interface, so no event is allocated.

// observer is told every request's events. Its methods run on the
// request's path: they must be cheap and never block. An observer embeds
// noObserver for the events it ignores.
type observer interface {
	// route returns what the observer keeps for one route of a new table
	// (its series, its counters); the events of the route's requests find
	// it in routeInfo.state. nil: nothing.
	route(ri *routeInfo) any
	// begin: a request began (protocol, method, path and request id are
	// set). The context it returns is the request's from then on.
	begin(ctx context.Context, r *request) context.Context
	// resolved: the request's route, version and caller are known.
	resolved(ctx context.Context, r *request)
	// stepBegan: a pipeline step (or an undo action) is about to be sent;
	// the context it returns is the step's.
	stepBegan(ctx context.Context, r *request, st *config.Step) context.Context
	// stepEnded: the step's outcome; ctx is the one stepBegan returned.
	stepEnded(ctx context.Context, r *request, e stepOutcome)
	// cached: how a read was answered, or that a write invalidated reads.
	cached(r *request, e cacheEvent)
	// idempotency: an Idempotency-Key request replayed or refused.
	idempotency(r *request, e idempotencyOutcome)
	// shed: the route's answer shed load (429 RESOURCE_EXHAUSTED, 503
	// UNAVAILABLE).
	shed(r *request, err *socket.Error)
	// answered: status, code, cache and replayed are set.
	answered(ctx context.Context, r *request)
	// end: the request is over; r is reused after end returns.
	end(ctx context.Context, r *request)
	// connection: a WebSocket connection's event.
	connection(e connectionEvent)
}

// noObserver ignores every event.
type noObserver struct{}

func (noObserver) route(*routeInfo) any                                  { return nil }
func (noObserver) begin(ctx context.Context, _ *request) context.Context { return ctx }
func (noObserver) resolved(context.Context, *request)                    {}
func (noObserver) stepBegan(ctx context.Context, _ *request, _ *config.Step) context.Context {
	return ctx
}
func (noObserver) stepEnded(context.Context, *request, stepOutcome) {}
func (noObserver) cached(*request, cacheEvent)                      {}
func (noObserver) idempotency(*request, idempotencyOutcome)         {}
func (noObserver) shed(*request, *socket.Error)                     {}
func (noObserver) answered(context.Context, *request)               {}
func (noObserver) end(context.Context, *request)                    {}
func (noObserver) connection(connectionEvent)                       {}

// stepOutcome is a pipeline step's outcome.
type stepOutcome struct {
	step     *config.Step
	undoOf   *config.Step // for an undo action: the step it undid; nil for a step
	replayed bool         // the service answered with an earlier request's stored outcome
	err      error
}

// cacheEvent is what the cache did for a request of the route.
type cacheEvent struct {
	invalidation bool        // a write dropped the cached reads it may have changed (read is unset)
	read         readOutcome // how a read was answered
	cacheable    bool        // the route's reads are cached: a miss is a cache miss
}

// idempotencyOutcome is an Idempotency-Key request that did not run.
type idempotencyOutcome struct {
	replayed bool   // answered with the stored answer
	conflict string // refused: reason idempotency_key_in_use or idempotency_key_reused
}

// connectionEvent is a WebSocket connection's event (package wsedge).
type connectionEvent = wsedge.ConnEvent

// Protocols of requests.
const (
	protocolHTTP      = "http"
	protocolWebSocket = "websocket"
	protocolGRPC      = "grpc"
)

// request is what the observers know of one request: the edge fills in
// who asked for what, the core what it resolved to and how it answered.
// Records are pooled: nobody holds one after its end.
type request struct {
	obs observers
	// parent is the REST request a GatewayService call runs inside (its
	// REST binding); what the call resolves to and answers is its
	// parent's too, for the parent's access line.
	parent *request

	protocol    string // protocolHTTP, protocolWebSocket or protocolGRPC
	method      string // the HTTP method, or the gRPC method's full name
	path        string // REST: the URL path; a frame: its path, when not a route's
	rest        restPath
	requestID   string
	traceParent string // the client's, if it sent one
	start       time.Time
	label       string // REST: the route label of a request the routes do not serve (routeGatewayService, routeDemo)

	version   string
	route     *routeInfo // nil until resolved, or when no route matched
	principal string
	trace     trace.SpanContext // the request's span, or the client's trace context

	status   int    // REST: the status written (0: none); else the answer's
	code     string // OK or the answer's error code
	cache    string // a read's X-Cache
	replayed bool   // an Idempotency-Key replay
	grpcCode string // gRPC: the call's code
	gone     bool   // REST: the client left before any answer

	w statusWriter // REST: the writer the handlers write to
}

var requests = sync.Pool{New: func() any { return new(request) }}

// newRequest starts a record; the edge sets what it knows, then begin.
func (o observers) newRequest(protocol, method string) *request {
	r := requests.Get().(*request)
	*r = request{obs: o, protocol: protocol, method: method, start: time.Now()}
	return r
}

// begin tells the observers the request began.
func (r *request) begin(ctx context.Context) context.Context {
	for _, o := range r.obs {
		ctx = o.begin(ctx, r)
	}
	r.noteTrace(ctx)
	return ctx
}

// noteTrace keeps the trace the request is in, once ctx knows it.
func (r *request) noteTrace(ctx context.Context) {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		r.trace = sc
	}
}

// invoked notes what an invocation says about itself, and makes r the
// record its stages tell (in.obs).
func (r *request) invoked(ctx context.Context, in *invocation) {
	if r == nil {
		return
	}
	in.obs = r
	r.rest = in.path
	r.version = in.path.version
	if r.requestID == "" {
		r.requestID = in.requestID
	}
	if r.traceParent == "" {
		r.traceParent = in.traceParent
	}
	r.noteTrace(ctx)
	if p := r.parent; p != nil {
		p.version = r.version
	}
}

// resolve notes the route a request resolved to and its caller.
func (r *request) resolve(ctx context.Context, ri *routeInfo, principal string) {
	if r == nil || ri == nil {
		return
	}
	r.route, r.principal = ri, principal
	r.noteTrace(ctx)
	if p := r.parent; p != nil {
		p.route, p.principal = ri, principal
	}
	for _, o := range r.obs {
		o.resolved(ctx, r)
	}
}

// stepBegan tells the observers a step is about to be sent.
func (r *request) stepBegan(ctx context.Context, st *config.Step) context.Context {
	if r == nil {
		return ctx
	}
	for _, o := range r.obs {
		ctx = o.stepBegan(ctx, r, st)
	}
	return ctx
}

func (r *request) stepEnded(ctx context.Context, e stepOutcome) {
	if r == nil {
		return
	}
	for _, o := range r.obs {
		o.stepEnded(ctx, r, e)
	}
}

func (r *request) cached(e cacheEvent) {
	if r == nil || r.route == nil {
		return
	}
	for _, o := range r.obs {
		o.cached(r, e)
	}
}

func (r *request) idempotency(e idempotencyOutcome) {
	if r == nil || r.route == nil {
		return
	}
	for _, o := range r.obs {
		o.idempotency(r, e)
	}
}

// ran notes a route's answer: an answer that sheds load is told as shed.
func (r *request) ran(a answer) {
	if r == nil || r.route == nil || a.err == nil || (a.err.Code != socket.CodeResourceExhausted && a.err.Code != socket.CodeUnavailable) {
		return
	}
	for _, o := range r.obs {
		o.shed(r, a.err)
	}
}

// answer notes how the request was answered.
func (r *request) answer(ctx context.Context, a answer) {
	if r == nil {
		return
	}
	r.status, r.cache, r.replayed = a.status, a.xCache, a.replayed
	r.code = codeOK
	if a.err != nil {
		r.code = string(a.err.Code)
	}
	if p := r.parent; p != nil {
		p.cache, p.replayed = r.cache, r.replayed
	}
	for _, o := range r.obs {
		o.answered(ctx, r)
	}
}

// end tells the observers the request is over, and recycles r.
func (r *request) end(ctx context.Context) {
	for _, o := range r.obs {
		o.end(ctx, r)
	}
	*r = request{}
	requests.Put(r)
}

// codeOK is the code of an answer without an error.
const codeOK = "OK"

type requestKey struct{}

// withRequest carries a record to a handler the edge calls through
// another library (GatewayService's handlers).
func withRequest(ctx context.Context, r *request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// requestFrom returns the record withRequest put in ctx, nil without one.
func requestFrom(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	return r
}

// observers are the gateway's observers, in the order they are told.
type observers []observer

// connection tells the observers a WebSocket connection's event.
func (o observers) connection(e connectionEvent) {
	for _, x := range o {
		x.connection(e)
	}
}

// routeKey names a route of one table: a version may share its routes
// with the versions that extend it.
type routeKey struct {
	version  *config.Version
	resource *config.Resource
	route    *config.Route
}

// routeInfo is what observers know of a route, made once per table.
type routeInfo struct {
	version  string // the API version, e.g. v1
	template string // the path template, e.g. /v1/users/{id}
	method   string
	name     string // method and template, e.g. "GET /v1/users/{id}"
	actions  string // service.ACTION, comma-separated for a pipeline
	service  string // a single action's service and action; empty for a pipeline
	action   string
	state    []any // what each observer keeps for the route, by its index
}

// routesOf makes the route infos of every route of a configuration.
func (o observers) routesOf(cfg *config.Config) map[routeKey]*routeInfo {
	out := map[routeKey]*routeInfo{}
	for _, v := range cfg.Versions {
		for _, res := range v.Resources {
			for _, rt := range res.Routes {
				ri := &routeInfo{version: v.Name, template: routePath(v.Name, res.Name, rt), method: rt.Method, state: make([]any, len(o))}
				ri.name = ri.method + " " + ri.template
				ri.actions = routeActions(rt)
				if len(rt.Pipeline) == 0 {
					ri.service, ri.action = rt.Service, rt.Action
				}
				for i, x := range o {
					ri.state[i] = x.route(ri)
				}
				out[routeKey{v, res, rt}] = ri
			}
		}
	}
	return out
}

// routeActions names what a route runs: service.ACTION, comma-separated
// for a pipeline's steps.
func routeActions(rt *config.Route) string {
	if len(rt.Pipeline) == 0 {
		return rt.Service + "." + rt.Action
	}
	s := ""
	for _, st := range rt.Pipeline {
		for _, x := range append([]*config.Step{st}, st.Parallel...) {
			if x.Action != "" {
				if s != "" {
					s += ","
				}
				s += x.Service + "." + x.Action
			}
		}
	}
	return s
}

// routeInfo returns a resolved route's info.
func (t *table) routeInfo(r resolved) *routeInfo {
	return t.routes[routeKey{r.version, r.resource, r.route}]
}

// statusWriter is the REST edge's one ResponseWriter wrapper: it notes
// the first final status written, for the observers.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader notes the first final status.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
