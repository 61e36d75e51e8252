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
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/metadata"

	"github.com/streamgate/streamgate/gateway/config"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
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

// invokeMethod is GatewayService.Invoke's full name, its span's name.
const invokeMethod = "streamgate.gateway.v1.GatewayService/Invoke"

var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// startHTTP starts a REST request's server span, continuing the trace
// context of its headers. While the span records, the writer it returns
// notes the status for it.
func (g *Gateway) startHTTP(w http.ResponseWriter, r *http.Request) (context.Context, http.ResponseWriter, trace.Span) {
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	if !tracing.Enabled() {
		return ctx, w, noop.Span{}
	}
	ctx, span := g.tracer.Start(ctx, r.Method, serverSpan...)
	if span.IsRecording() {
		span.SetAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(validText(r.URL.Path)),
			tracing.RequestID.String(w.Header().Get(headerRequestID)),
		)
		w = &statusRecorder{ResponseWriter: w}
	}
	return ctx, w, span
}

// endHTTP records the status a REST request was answered with and ends its
// span; 5xx answers are errors.
func endHTTP(span trace.Span, w http.ResponseWriter) {
	rec, ok := w.(*statusRecorder)
	if !ok || !span.IsRecording() {
		return
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= http.StatusInternalServerError {
		span.SetStatus(otelcodes.Error, strconv.Itoa(status))
	}
	span.End()
}

// traceRoute notes the route a request resolved to on its span, and
// names a REST request's span after it ("POST /v3/orders/{id}/pay").
func traceRoute(ctx context.Context, p prepared, rest bool) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	route := routePath(p.version.Name, p.resource.Name, p.route)
	if rest {
		span.SetName(p.route.Method + " " + route)
	}
	span.SetAttributes(semconv.HTTPRoute(route), tracing.APIVersion.String(p.version.Name))
	if len(p.route.Pipeline) == 0 {
		span.SetAttributes(tracing.Service.String(p.route.Service), tracing.Action.String(p.route.Action))
	}
}

// statusRecorder notes the status a handler answers with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// startInvoke starts GatewayService.Invoke's server span: a child of the
// span in ctx (Invoke's REST binding runs inside the REST request's span),
// or continuing the trace context of the call's metadata.
func (g *Gateway) startInvoke(ctx context.Context) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			ctx = otel.GetTextMapPropagator().Extract(ctx, metadataCarrier(md))
		}
	}
	if !tracing.Enabled() {
		return ctx, noop.Span{}
	}
	ctx, span := g.tracer.Start(ctx, invokeMethod, serverSpan...)
	if span.IsRecording() {
		span.SetAttributes(semconv.RPCSystemNameKey.String("grpc"), semconv.RPCMethod(invokeMethod))
	}
	return ctx, span
}

// endInvoke records Invoke's outcome and ends its span.
func endInvoke(span trace.Span, in *gatewayv1.InvokeRequest, out *gatewayv1.InvokeResponse, err error) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(tracing.APIVersion.String(in.GetVersion()))
	code := tracing.CodeOK
	if e := out.GetError(); e != nil {
		code = e.GetCode()
	} else if err != nil {
		code = string(socket.FromStatus(err).Code)
	}
	span.SetAttributes(tracing.Code.String(code))
	if err != nil || out.GetHttpStatus() >= http.StatusInternalServerError {
		span.SetStatus(otelcodes.Error, code)
	}
	span.End()
}

// startStep starts a pipeline step's span, a child of the request's.
func (t *table) startStep(ctx context.Context, st *config.Step) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, noop.Span{}
	}
	ctx, span := t.tracer.Start(ctx, "step "+st.Name)
	if span.IsRecording() {
		span.SetAttributes(tracing.Step.String(st.Name), tracing.Service.String(st.Service), tracing.Action.String(st.Action))
	}
	return ctx, span
}

// endStep records a step's outcome and ends its span.
func endStep(span trace.Span, reply socket.Reply, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		e := socket.AsError(err)
		span.SetAttributes(tracing.Code.String(string(e.Code)))
		span.SetStatus(otelcodes.Error, string(e.Code)+": "+e.Message)
	} else {
		span.SetAttributes(tracing.Code.String(tracing.CodeOK))
	}
	if reply.Replayed {
		span.SetAttributes(tracing.Replayed.Bool(true))
	}
	span.End()
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

// startSocketFrame starts a WebSocket request frame's server span (a trace
// of its own: the frame carries no trace context); traceRoute names its
// route.
func (g *Gateway) startSocketFrame(ctx context.Context) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, noop.Span{}
	}
	return g.tracer.Start(ctx, socketFrameSpan, serverSpan...)
}

// endSocketFrame records a frame's answer and ends its span; 5xx answers
// are errors.
func endSocketFrame(span trace.Span, a answer) {
	if !span.IsRecording() {
		return
	}
	code := tracing.CodeOK
	if a.err != nil {
		code = string(a.err.Code)
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(a.status), tracing.Code.String(code))
	if a.status >= http.StatusInternalServerError {
		span.SetStatus(otelcodes.Error, code)
	}
	span.End()
}
