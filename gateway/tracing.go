package gateway

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/tracing"
	"github.com/streamgate/streamgate/services/socket"
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

// invokeMethod is GatewayService.Invoke's full name, its span's name;
// invokeFullMethod is the name gRPC calls it by.
const (
	invokeMethod     = "streamgate.gateway.v1.GatewayService/Invoke"
	invokeFullMethod = "/" + invokeMethod
)

var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// tracer is the observer that traces requests: a server span per REST
// request, WebSocket request frame and GatewayService.Invoke, and a span
// per pipeline step under it. It starts nothing until a program sets a
// TracerProvider (tracing.Enabled).
type tracer struct {
	noObserver
	tracer trace.Tracer
}

var _ observer = tracer{}

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

// begin starts a request's server span, continuing the trace context in
// ctx (the edge extracted the caller's).
func (t tracer) begin(ctx context.Context, r *request) context.Context {
	if !tracing.Enabled() {
		return ctx
	}
	var span trace.Span
	switch {
	case r.protocol == protocolHTTP:
		ctx, span = t.tracer.Start(ctx, r.method, serverSpan...)
		span.SetAttributes(
			semconv.HTTPRequestMethodKey.String(r.method),
			semconv.URLPath(validText(r.path)),
			tracing.RequestID.String(r.requestID),
		)
	case r.protocol == protocolWebSocket:
		// A trace of its own: the frame carries no trace context.
		ctx, span = t.tracer.Start(ctx, socketFrameSpan, serverSpan...)
	case r.method == invokeFullMethod:
		// A child of the span in ctx: Invoke's REST binding runs inside
		// the REST request's span.
		ctx, span = t.tracer.Start(ctx, invokeMethod, serverSpan...)
		span.SetAttributes(semconv.RPCSystemNameKey.String("grpc"), semconv.RPCMethod(invokeMethod))
	default:
		return ctx
	}
	return context.WithValue(ctx, spanKey{}, span)
}

// resolved notes the route a request resolved to on its span, and names
// a REST request's span after it ("POST /v3/orders/{id}/pay").
func (tracer) resolved(ctx context.Context, r *request) {
	span := started(ctx)
	if span == nil {
		return
	}
	if r.protocol == protocolHTTP {
		span.SetName(r.route.name)
	}
	span.SetAttributes(semconv.HTTPRoute(r.route.template), tracing.APIVersion.String(r.route.version))
	if r.route.service != "" {
		span.SetAttributes(tracing.Service.String(r.route.service), tracing.Action.String(r.route.action))
	}
}

// end records a request's outcome and ends its span; 5xx answers are
// errors.
func (tracer) end(ctx context.Context, r *request) {
	span := started(ctx)
	if span == nil {
		return
	}
	switch r.protocol {
	case protocolHTTP:
		st := r.status
		if st == 0 {
			st = http.StatusOK // nothing written: net/http answers 200
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(st))
		if st >= http.StatusInternalServerError {
			span.SetStatus(otelcodes.Error, strconv.Itoa(st))
		}
	case protocolWebSocket:
		code := r.code
		if code == "" {
			code = tracing.CodeOK
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(r.status), tracing.Code.String(code))
		if r.status >= http.StatusInternalServerError {
			span.SetStatus(otelcodes.Error, code)
		}
	default: // Invoke
		code := r.code
		if code == "" {
			code = tracing.CodeOK
		}
		span.SetAttributes(tracing.APIVersion.String(r.version), tracing.Code.String(code))
		if (r.grpcCode != "" && r.grpcCode != codes.OK.String()) || r.status >= http.StatusInternalServerError {
			span.SetStatus(otelcodes.Error, code)
		}
	}
	span.End()
}

// stepBegan starts a pipeline step's span, a child of the request's.
func (t tracer) stepBegan(ctx context.Context, _ *request, st *config.Step) context.Context {
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

// stepEnded records a step's outcome and ends its span.
func (tracer) stepEnded(ctx context.Context, _ *request, e stepOutcome) {
	span := started(ctx)
	if span == nil {
		return
	}
	if e.err != nil {
		se := socket.AsError(e.err)
		span.SetAttributes(tracing.Code.String(string(se.Code)))
		span.SetStatus(otelcodes.Error, string(se.Code)+": "+se.Message)
	} else {
		span.SetAttributes(tracing.Code.String(tracing.CodeOK))
	}
	if e.replayed {
		span.SetAttributes(tracing.Replayed.Bool(true))
	}
	span.End()
}

// grpcTraceContext continues the trace context of a GatewayService call's
// metadata, unless ctx is in a span already (Invoke's REST binding).
func grpcTraceContext(ctx context.Context) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		return otel.GetTextMapPropagator().Extract(ctx, metadataCarrier(md))
	}
	return ctx
}

// metadataCarrier reads gRPC metadata as a propagation carrier.
type metadataCarrier metadata.MD

var _ propagation.TextMapCarrier = metadataCarrier{}

func (c metadataCarrier) Get(key string) string { return metadataValue(metadata.MD(c), key) }

func (c metadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// socketFrameSpan names the span of a WebSocket request frame.
const socketFrameSpan = "socket request"
