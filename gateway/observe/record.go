package observe

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/tracing"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// Record is what the observers know of one request: the edge fills in who
// asked for what, the core what it resolved to and how it answered.
// Records are pooled: nobody holds one after its End.
type Record struct {
	obs Observers
	// Parent is the REST request a GatewayService call runs inside (its
	// REST binding); what the call resolves to and answers is its
	// parent's too, for the parent's access line.
	Parent *Record

	Protocol    string // ProtocolHTTP, ProtocolWebSocket or ProtocolGRPC
	Method      string // the HTTP method, or the gRPC method's full name
	Path        string // REST: the URL path; a frame: its path
	RequestID   string
	TraceParent string // the client's, if it sent one
	Start       time.Time
	Label       string // REST: the route label of a request the routes do not serve (gateway_service, demo)

	Version   string
	Route     *Route // nil until resolved, or when no route matched
	Principal string
	Trace     trace.SpanContext // the request's span, or the client's trace context

	Status   int    // REST: the status written (0: none); else the answer's
	Code     string // OK or the answer's error code
	Cache    string // a read's X-Cache
	Replayed bool   // an Idempotency-Key replay
	GRPCCode string // gRPC: the call's code
	Gone     bool   // REST: the client left before any answer
}

var records = sync.Pool{New: func() any { return new(Record) }}

// NewRecord starts a record; the edge sets what it knows, then Begin.
func (o Observers) NewRecord(protocol, method string) *Record {
	r := records.Get().(*Record)
	*r = Record{obs: o, Protocol: protocol, Method: method, Start: time.Now()}
	return r
}

// Begin tells the observers the request began.
func (r *Record) Begin(ctx context.Context) context.Context {
	for _, o := range r.obs {
		ctx = o.Begin(ctx, r)
	}
	r.noteTrace(ctx)
	return ctx
}

// noteTrace keeps the trace the request is in, once ctx knows it.
func (r *Record) noteTrace(ctx context.Context) {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		r.Trace = sc
	}
}

// noteLaterTrace is noteTrace after Begin: the edges continue the
// caller's trace context before Begin, and the request's span starts in
// Begin, so a later context can only tell a trace Begin did not see when
// tracing is on and none was found; otherwise it costs no context lookup.
func (r *Record) noteLaterTrace(ctx context.Context) {
	if !r.Trace.HasTraceID() && tracing.Enabled() {
		r.noteTrace(ctx)
	}
}

// Invoked notes what an invocation says about itself: the version it
// names, and the request id and trace context the edge did not know.
func (r *Record) Invoked(ctx context.Context, version, requestID, traceParent string) {
	if r == nil {
		return
	}
	r.Version = version
	if r.RequestID == "" {
		r.RequestID = requestID
	}
	if r.TraceParent == "" {
		r.TraceParent = traceParent
	}
	r.noteLaterTrace(ctx)
	if p := r.Parent; p != nil {
		p.Version = r.Version
	}
}

// Resolve notes the route a request resolved to and its caller.
func (r *Record) Resolve(ctx context.Context, ri *Route, principal string) {
	if r == nil || ri == nil {
		return
	}
	r.Route, r.Principal = ri, principal
	r.noteLaterTrace(ctx)
	if p := r.Parent; p != nil {
		p.Route, p.Principal = ri, principal
	}
	for _, o := range r.obs {
		o.Resolved(ctx, r)
	}
}

// StepBegan tells the observers a step is about to be sent.
func (r *Record) StepBegan(ctx context.Context, st *config.Step) context.Context {
	if r == nil {
		return ctx
	}
	for _, o := range r.obs {
		ctx = o.StepBegan(ctx, r, st)
	}
	return ctx
}

// StepEnded tells the observers a step's outcome.
func (r *Record) StepEnded(ctx context.Context, e StepOutcome) {
	if r == nil {
		return
	}
	for _, o := range r.obs {
		o.StepEnded(ctx, r, e)
	}
}

// Cached tells the observers what the cache did for a resolved request.
func (r *Record) Cached(e CacheEvent) {
	if r == nil || r.Route == nil {
		return
	}
	for _, o := range r.obs {
		o.Cached(r, e)
	}
}

// Idempotency tells the observers a resolved Idempotency-Key request was
// replayed or refused.
func (r *Record) Idempotency(e IdempotencyOutcome) {
	if r == nil || r.Route == nil {
		return
	}
	for _, o := range r.obs {
		o.Idempotency(r, e)
	}
}

// Ran notes a route's answer, its error if any: an answer that sheds load
// is told as Shed.
func (r *Record) Ran(err *status.Error) {
	if r == nil || r.Route == nil || err == nil || (err.Code != socket.CodeResourceExhausted && err.Code != socket.CodeUnavailable) {
		return
	}
	for _, o := range r.obs {
		o.Shed(r, err)
	}
}

// Answer notes how the request was answered: its status, its error if
// any, a read's X-Cache and whether it was an Idempotency-Key replay.
func (r *Record) Answer(ctx context.Context, status int, err *status.Error, cache string, replayed bool) {
	if r == nil {
		return
	}
	r.Status, r.Cache, r.Replayed = status, cache, replayed
	r.Code = codeOK
	if err != nil {
		r.Code = string(err.Code)
	}
	if p := r.Parent; p != nil {
		p.Cache, p.Replayed = r.Cache, r.Replayed
	}
	for _, o := range r.obs {
		o.Answered(ctx, r)
	}
}

// End tells the observers the request is over, and recycles r.
func (r *Record) End(ctx context.Context) {
	for _, o := range r.obs {
		o.End(ctx, r)
	}
	*r = Record{}
	records.Put(r)
}

type recordKey struct{}

// NewContext carries a record to a handler the edge calls through another
// library (GatewayService's handlers).
func NewContext(ctx context.Context, r *Record) context.Context {
	return context.WithValue(ctx, recordKey{}, r)
}

// FromContext returns the record NewContext put in ctx, nil without one.
func FromContext(ctx context.Context) *Record {
	r, _ := ctx.Value(recordKey{}).(*Record)
	return r
}
