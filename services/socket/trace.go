package socket

import (
	"context"

	"go.opentelemetry.io/otel"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/tracing"
)

// Tracing uses the global OpenTelemetry TracerProvider and propagator
// (otel.SetTracerProvider, otel.SetTextMapPropagator): the server runs
// each frame in a server span named after the action, continuing the trace
// context the frame's meta carries (traceparent, tracestate); the client
// runs each call in a client span and sends its context in the frame's
// meta, so a handler that calls another service continues the same trace.
// Until the program sets a TracerProvider no span is started and the
// meta's trace context is passed on unchanged.

// tracerName names the tracer of the runtime and the request library.
const tracerName = "github.com/streamgate/streamgate/services/socket"

// newTracer returns the runtime's tracer from the global provider. A
// tracer taken before the program sets the provider follows it once set.
func newTracer() trace.Tracer { return otel.Tracer(tracerName) }

var (
	serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	clientSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

// serverTracer is the observer that runs each request in a server span
// named after the action, continuing the trace context of its meta.
type serverTracer struct {
	noServerObserver
	tracer  trace.Tracer
	service string
}

var _ serverObserver = serverTracer{}

// serverSpanKey holds the span started: a span in ctx that this observer
// did not start is never ended by it.
type serverSpanKey struct{}

func (t serverTracer) started(ctx context.Context, a *action, req *Request) context.Context {
	if !tracing.Enabled() {
		return ctx
	}
	m := &req.Meta
	if m.TraceParent != "" {
		ctx = otel.GetTextMapPropagator().Extract(ctx, metaCarrier{m})
	}
	ctx, span := t.tracer.Start(ctx, a.name, serverSpan...)
	if !span.IsRecording() {
		return ctx
	}
	span.SetAttributes(tracing.Service.String(t.service), tracing.Action.String(a.name), tracing.APIVersion.String(m.APIVersion))
	if req.ResourceID != "" {
		span.SetAttributes(tracing.ResourceID.String(req.ResourceID))
	}
	if m.RequestID != "" {
		span.SetAttributes(tracing.RequestID.String(m.RequestID))
	}
	return context.WithValue(ctx, serverSpanKey{}, span)
}

func (serverTracer) finished(ctx context.Context, _ *action, e *Error) {
	if !tracing.Enabled() {
		return
	}
	if span, ok := ctx.Value(serverSpanKey{}).(trace.Span); ok {
		endSpan(span, errOrNil(e), trace.SpanKindServer)
	}
}

// startCall starts a request's client span.
func (c *Client) startCall(ctx context.Context, action, id string) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, noop.Span{}
	}
	ctx, span := c.tracer.Start(ctx, action, clientSpan...)
	if span.IsRecording() {
		span.SetAttributes(tracing.Action.String(action))
		if id != "" {
			span.SetAttributes(tracing.ResourceID.String(id))
		}
	}
	return ctx, span
}

// endSpan records a frame's outcome and ends its span. Server spans are
// errors only when the service failed (serverFault); client spans for any
// error.
func endSpan(span trace.Span, err error, kind trace.SpanKind) {
	if !span.IsRecording() {
		return
	}
	if err == nil {
		span.SetAttributes(tracing.Code.String(tracing.CodeOK))
	} else {
		e := AsError(err)
		span.SetAttributes(tracing.Code.String(string(e.Code)))
		if kind == trace.SpanKindClient || serverFault(e.Code) {
			span.SetStatus(otelcodes.Error, string(e.Code)+": "+e.Message)
		}
	}
	span.End()
}

// serverFault reports whether a code says the service failed rather than
// the caller's request: INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED, or a
// code outside the standard set (sent as INTERNAL). These are the codes
// the gateway answers with a 5xx status.
func serverFault(c Code) bool {
	switch c {
	case CodeInternal, CodeUnavailable, CodeDeadlineExceeded:
		return true
	}
	return !c.Valid()
}

// injectTrace puts the trace context of ctx's span into a frame's meta,
// replacing what the caller's meta carried, when the span context is valid
// and the global propagator writes it.
func injectTrace(ctx context.Context, pm *socketv1.Meta) *socketv1.Meta {
	if !tracing.Enabled() || !trace.SpanContextFromContext(ctx).IsValid() {
		return pm
	}
	if pm == nil {
		pm = &socketv1.Meta{}
	}
	parent, state := pm.Traceparent, pm.Tracestate
	pm.Traceparent, pm.Tracestate = "", ""
	otel.GetTextMapPropagator().Inject(ctx, frameCarrier{pm})
	if pm.Traceparent == "" { // the propagator writes no W3C context
		pm.Traceparent, pm.Tracestate = parent, state
	}
	return pm
}

// W3C trace context field names, as propagators name them.
const (
	fieldTraceParent = "traceparent"
	fieldTraceState  = "tracestate"
)

// metaCarrier reads a handler's Meta as a propagation carrier.
type metaCarrier struct{ m *Meta }

var _ propagation.TextMapCarrier = metaCarrier{}

func (c metaCarrier) Get(key string) string {
	switch key {
	case fieldTraceParent:
		return c.m.TraceParent
	case fieldTraceState:
		return c.m.TraceState
	}
	return ""
}

func (c metaCarrier) Set(key, value string) {
	switch key {
	case fieldTraceParent:
		c.m.TraceParent = value
	case fieldTraceState:
		c.m.TraceState = value
	}
}

func (c metaCarrier) Keys() []string { return []string{fieldTraceParent, fieldTraceState} }

// frameCarrier writes a request frame's meta as a propagation carrier.
type frameCarrier struct{ m *socketv1.Meta }

var _ propagation.TextMapCarrier = frameCarrier{}

func (c frameCarrier) Get(key string) string {
	switch key {
	case fieldTraceParent:
		return c.m.GetTraceparent()
	case fieldTraceState:
		return c.m.GetTracestate()
	}
	return ""
}

func (c frameCarrier) Set(key, value string) {
	switch key {
	case fieldTraceParent:
		c.m.Traceparent = value
	case fieldTraceState:
		c.m.Tracestate = value
	}
}

func (c frameCarrier) Keys() []string { return []string{fieldTraceParent, fieldTraceState} }

// markCoalesced notes on the call's span that an identical call in flight
// answered it.
func markCoalesced(ctx context.Context) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(tracing.Coalesced.Bool(true))
	}
}
