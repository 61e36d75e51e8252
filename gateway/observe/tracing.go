package observe

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	otelcodes "go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/streamgate/streamgate/gateway/config"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	"github.com/streamgate/streamgate/internal/tracing"
	"github.com/streamgate/streamgate/status"
)

// Tracing uses the global OpenTelemetry TracerProvider and propagator
// (until a program sets a provider, no span is started and only the trace
// context is extracted, for TraceID and to be passed on):
// each REST request and each GatewayService.Invoke runs in a server span
// that continues the caller's trace context (the traceparent and
// tracestate headers or metadata) or starts a trace; each pipeline step
// is a child span of it; the service clients (package socket) add a client
// span per call and carry the context to the services in the frames' meta.

// tracerName names the gateway's tracer.
const tracerName = "github.com/streamgate/streamgate/gateway"

// invokeMethod is GatewayService.Invoke's name, its span's name.
var invokeMethod = strings.TrimPrefix(gatewayv1.GatewayService_Invoke_FullMethodName, "/")

var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// Tracer is the observer that traces requests: a server span per REST
// request, WebSocket request frame and GatewayService.Invoke, and a span
// per pipeline step under it. It starts nothing until a program sets a
// TracerProvider (tracing.Enabled).
type Tracer struct {
	NoObserver
	tracer trace.Tracer
}

var _ Observer = Tracer{}

// NewTracer returns the observer that traces with the global
// TracerProvider's tracer.
func NewTracer() Tracer { return Tracer{tracer: otel.Tracer(tracerName)} }

// spanKey holds the span this observer started, in the context it
// returned: a span in ctx that it did not start (a middleware's, the
// client's) is never ended or renamed by it.
type spanKey struct{}

// started returns the span the observer started for ctx's request or
// step; nil when it started none.
func started(ctx context.Context) trace.Span {
	if !tracing.Enabled() {
		return nil
	}
	span, _ := ctx.Value(spanKey{}).(trace.Span)
	if span == nil || !span.IsRecording() {
		return nil
	}
	return span
}

// Begin starts a request's server span, continuing the trace context in
// ctx (the edge extracted the caller's).
func (t Tracer) Begin(ctx context.Context, r *Record) context.Context {
	if !tracing.Enabled() {
		return ctx
	}
	var span trace.Span
	switch {
	case r.Protocol == ProtocolHTTP:
		ctx, span = t.tracer.Start(ctx, r.Method, serverSpan...)
		span.SetAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(strings.ToValidUTF8(r.Path, "\uFFFD")),
			tracing.RequestID.String(r.RequestID),
		)
	case r.Protocol == ProtocolWebSocket:
		// A trace of its own: the frame carries no trace context.
		ctx, span = t.tracer.Start(ctx, socketFrameSpan, serverSpan...)
	case r.Method == gatewayv1.GatewayService_Invoke_FullMethodName:
		// A child of the span in ctx: Invoke's REST binding runs inside
		// the REST request's span.
		ctx, span = t.tracer.Start(ctx, invokeMethod, serverSpan...)
		span.SetAttributes(semconv.RPCSystemNameKey.String("grpc"), semconv.RPCMethod(invokeMethod))
	default:
		return ctx
	}
	return context.WithValue(ctx, spanKey{}, span)
}

// Resolved notes the route a request resolved to on its span, and names
// a REST request's span after it ("POST /v3/orders/{id}/pay").
func (Tracer) Resolved(ctx context.Context, r *Record) {
	span := started(ctx)
	if span == nil {
		return
	}
	if r.Protocol == ProtocolHTTP {
		span.SetName(r.Route.Name)
	}
	span.SetAttributes(semconv.HTTPRoute(r.Route.Template), tracing.APIVersion.String(r.Route.Version))
	if r.Route.Service != "" {
		span.SetAttributes(tracing.Service.String(r.Route.Service), tracing.Action.String(r.Route.Action))
	}
}

// End records a request's outcome and ends its span; 5xx answers are
// errors.
func (Tracer) End(ctx context.Context, r *Record) {
	span := started(ctx)
	if span == nil {
		return
	}
	switch r.Protocol {
	case ProtocolHTTP:
		st := r.Status
		if st == 0 {
			st = http.StatusOK // nothing written: net/http answers 200
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(st))
		if st >= http.StatusInternalServerError {
			span.SetStatus(otelcodes.Error, strconv.Itoa(st))
		}
	case ProtocolWebSocket:
		code := r.Code
		if code == "" {
			code = tracing.CodeOK
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(r.Status), tracing.Code.String(code))
		if r.Status >= http.StatusInternalServerError {
			span.SetStatus(otelcodes.Error, code)
		}
	default: // Invoke
		code := r.Code
		if code == "" {
			code = tracing.CodeOK
		}
		span.SetAttributes(tracing.APIVersion.String(r.Version), tracing.Code.String(code))
		if (r.GRPCCode != "" && r.GRPCCode != codes.OK.String()) || r.Status >= http.StatusInternalServerError {
			span.SetStatus(otelcodes.Error, code)
		}
	}
	span.End()
}

// StepBegan starts a pipeline step's span, a child of the request's.
func (t Tracer) StepBegan(ctx context.Context, _ *Record, st *config.Step) context.Context {
	if !tracing.Enabled() {
		return ctx
	}
	ctx, span := t.tracer.Start(ctx, "step "+st.Name)
	if !span.IsRecording() {
		return ctx
	}
	span.SetAttributes(tracing.Step.String(st.Name), tracing.Service.String(st.Service), tracing.Action.String(st.Action))
	return context.WithValue(ctx, spanKey{}, span)
}

// StepEnded records a step's outcome and ends its span.
func (Tracer) StepEnded(ctx context.Context, _ *Record, e StepOutcome) {
	span := started(ctx)
	if span == nil {
		return
	}
	if e.Err != nil {
		se := status.AsError(e.Err)
		span.SetAttributes(tracing.Code.String(string(se.Code)))
		span.SetStatus(otelcodes.Error, string(se.Code)+": "+se.Message)
	} else {
		span.SetAttributes(tracing.Code.String(tracing.CodeOK))
	}
	if e.Replayed {
		span.SetAttributes(tracing.Replayed.Bool(true))
	}
	span.End()
}

// socketFrameSpan names the span of a WebSocket request frame.
const socketFrameSpan = "socket request"
