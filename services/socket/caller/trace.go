package caller

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/streamgate/streamgate/internal/tracing"
)

// The client runs each call in a client span and sends its trace context
// in the frame's meta (see package wire).

var clientSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

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

// markCoalesced notes on the call's span that an identical call in flight
// answered it.
func markCoalesced(ctx context.Context) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(tracing.Coalesced.Bool(true))
	}
}
