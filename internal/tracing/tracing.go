// Package tracing holds what streamgate's parts share to trace requests
// with OpenTelemetry: the attribute keys of their spans and a reader of the
// trace id in a context (for log lines). It is streamgate's own, not public
// API. The parts use the global TracerProvider and propagator
// (go.opentelemetry.io/otel), so tracing is off, at near-zero cost, until a
// program sets them.
//
//	ctx, span := tracer.Start(ctx, "GET_USER", trace.WithSpanKind(trace.SpanKindServer))
//	span.SetAttributes(tracing.Action.String("GET_USER"))
//	log.Info("request", "trace_id", tracing.TraceID(ctx))
package tracing

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Span attribute keys of streamgate's own spans (the gateway's HTTP spans
// also carry the semantic conventions' http.* keys).
const (
	// Action is the action a frame runs, e.g. GET_USER.
	Action = attribute.Key("streamgate.action")
	// ResourceID is the resource a frame is about; absent when empty.
	ResourceID = attribute.Key("streamgate.resource_id")
	// Code is a frame's outcome: OK or one of the standard error codes.
	Code = attribute.Key("streamgate.code")
	// Service is the service that serves the action.
	Service = attribute.Key("streamgate.service")
	// APIVersion is the API version a request came in on, e.g. v3.
	APIVersion = attribute.Key("streamgate.api_version")
	// RequestID is the id the edge assigned (X-Request-Id).
	RequestID = attribute.Key("streamgate.request_id")
	// Step is a pipeline step's name.
	Step = attribute.Key("streamgate.step")
	// Coalesced says a call was answered by an identical call in flight.
	Coalesced = attribute.Key("streamgate.coalesced")
	// Replayed says a service answered with the stored outcome of an
	// earlier request with the same idempotency key.
	Replayed = attribute.Key("streamgate.replayed")
)

// CodeOK is the Code of a frame that succeeded.
const CodeOK = "OK"

// unset is the global TracerProvider before a program sets one: it never
// changes after init.
var unset = otel.GetTracerProvider()

// Enabled reports whether the program set a global TracerProvider. Until it
// does, every span would be a no-op, so the parts skip starting them (a
// no-op span still costs allocations) and only pass the trace context they
// were given on; the check is an atomic load.
func Enabled() bool { return otel.GetTracerProvider() != unset }

// TraceID returns the hex trace id of the span in ctx, or "" when ctx
// carries no valid span context (tracing off and no traceparent came in).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
