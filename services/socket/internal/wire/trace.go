package wire

import (
	"context"

	"go.opentelemetry.io/otel"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/tracing"
	"github.com/streamgate/streamgate/status"
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

// Tracer returns the tracer of the runtime and the request library from
// the global provider. A tracer taken before the program sets the
// provider follows it once set.
func Tracer() trace.Tracer { return otel.Tracer(tracerName) }

// EndSpan records a frame's outcome and ends its span. Server spans are
// errors only when the service failed (serverFault); client spans for any
// error.
func EndSpan(span trace.Span, err error, kind trace.SpanKind) {
	if !span.IsRecording() {
		return
	}
	if err == nil {
		span.SetAttributes(tracing.Code.String(tracing.CodeOK))
	} else {
		e := status.AsError(err)
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
func serverFault(c status.Code) bool {
	switch c {
	case status.CodeInternal, status.CodeUnavailable, status.CodeDeadlineExceeded:
		return true
	}
	return !c.Valid()
}

// InjectTrace puts the trace context of ctx's span into a frame's meta,
// replacing what the caller's meta carried, when the span context is valid
// and the global propagator writes it.
func InjectTrace(ctx context.Context, pm *socketv1.Meta) *socketv1.Meta {
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
	FieldTraceParent = "traceparent"
	FieldTraceState  = "tracestate"
)

// frameCarrier writes a request frame's meta as a propagation carrier.
type frameCarrier struct{ m *socketv1.Meta }

var _ propagation.TextMapCarrier = frameCarrier{}

func (c frameCarrier) Get(key string) string {
	switch key {
	case FieldTraceParent:
		return c.m.GetTraceparent()
	case FieldTraceState:
		return c.m.GetTracestate()
	}
	return ""
}

func (c frameCarrier) Set(key, value string) {
	switch key {
	case FieldTraceParent:
		c.m.Traceparent = value
	case FieldTraceState:
		c.m.Tracestate = value
	}
}

func (c frameCarrier) Keys() []string { return []string{FieldTraceParent, FieldTraceState} }
