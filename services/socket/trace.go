package socket

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/streamgate/streamgate/internal/tracing"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/status"
)

// The server runs each frame in a server span named after the action,
// continuing the trace context the frame's meta carries (see package wire
// for how tracing is set up).

var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

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

func (serverTracer) finished(ctx context.Context, _ *action, e *status.Error) {
	if !tracing.Enabled() {
		return
	}
	if span, ok := ctx.Value(serverSpanKey{}).(trace.Span); ok {
		wire.EndSpan(span, errOrNil(e), trace.SpanKindServer)
	}
}

// metaCarrier reads a handler's Meta as a propagation carrier.
type metaCarrier struct{ m *Meta }

var _ propagation.TextMapCarrier = metaCarrier{}

func (c metaCarrier) Get(key string) string {
	switch key {
	case wire.FieldTraceParent:
		return c.m.TraceParent
	case wire.FieldTraceState:
		return c.m.TraceState
	}
	return ""
}

func (c metaCarrier) Set(key, value string) {
	switch key {
	case wire.FieldTraceParent:
		c.m.TraceParent = value
	case wire.FieldTraceState:
		c.m.TraceState = value
	}
}

func (c metaCarrier) Keys() []string { return []string{wire.FieldTraceParent, wire.FieldTraceState} }
