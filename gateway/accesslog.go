package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
)

// accessMessage is the message of the access log's lines.
const accessMessage = "request"

// access is what one request's access-log line says; the edge fills it in
// as the request goes. A nil *access (logging at Info is off) ignores
// everything, so the hot path pays nothing for it.
//
// It never holds credentials: the principal is the subject the
// credentials proved, never the key or token.
type access struct {
	start     time.Time
	protocol  string // "http" or "grpc"
	method    string // the HTTP method, or the gRPC method's full name
	path      string // the request's path (REST) or empty
	requestID string
	traceID   string
	version   string
	route     string // method and path template, e.g. "GET /v1/users/{id}"
	actions   string // service.ACTION, comma-separated for a pipeline
	principal string
	status    int    // the HTTP status answered (gRPC: the route's, or the code's)
	cache     string // the read's X-Cache outcome
	replayed  bool   // an Idempotency-Key replay
	grpcCode  string // gRPC only
}

type accessKey struct{}

// accessFrom returns the request's access record, nil when there is none.
func accessFrom(ctx context.Context) *access {
	a, _ := ctx.Value(accessKey{}).(*access)
	return a
}

// newAccess starts a record when the logger takes Info lines.
func (g *Gateway) newAccess(ctx context.Context, protocol, method string) *access {
	if !g.opts.logger.Enabled(ctx, slog.LevelInfo) {
		return nil
	}
	return &access{start: time.Now(), protocol: protocol, method: method}
}

// prepared notes the route a request resolved to and its caller.
func (a *access) prepared(p prepared) {
	if a == nil || p.route == nil {
		return
	}
	a.route = p.route.Method + " " + routePath(p.version.Name, p.resource.Name, p.route)
	if len(p.route.Pipeline) == 0 {
		a.actions = p.route.Service + "." + p.route.Action
	} else {
		var steps []string
		for _, st := range p.route.Pipeline {
			for _, s := range append([]*config.Step{st}, st.Parallel...) {
				if s.Action != "" {
					steps = append(steps, s.Service+"."+s.Action)
				}
			}
		}
		a.actions = strings.Join(steps, ",")
	}
	a.principal = p.principal.Subject
}

// invocation notes what the request said about itself.
func (a *access) invocation(ctx context.Context, in *invocation) {
	if a == nil {
		return
	}
	if a.requestID == "" {
		a.requestID = in.requestID
	}
	a.version = in.path.version
	a.trace(ctx, in.traceParent)
}

// trace notes the trace id: the span in ctx, else the client's
// traceparent.
func (a *access) trace(ctx context.Context, traceParent string) {
	if a == nil {
		return
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		a.traceID = sc.TraceID().String()
		return
	}
	if a.traceID == "" {
		a.traceID = traceIDOf(traceParent)
	}
}

// answered notes an answer's outcome.
func (a *access) answered(ans answer) {
	if a == nil {
		return
	}
	a.status, a.cache, a.replayed = ans.status, ans.xCache, ans.replayed
}

// log writes the line.
func (a *access) log(ctx context.Context, l *slog.Logger) {
	if a == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("protocol", a.protocol),
		slog.String("method", a.method),
		slog.String("path", validText(a.path)),
		slog.String("request_id", a.requestID),
		slog.String("trace_id", a.traceID),
		slog.String("version", a.version),
		slog.String("route", a.route),
		slog.String("actions", a.actions),
		slog.String("principal", a.principal),
		slog.Int("status", a.status),
		slog.Duration("duration", time.Since(a.start)),
		slog.String("cache", a.cache),
	}
	if a.replayed {
		attrs = append(attrs, slog.Bool("replayed", true))
	}
	if a.grpcCode != "" {
		attrs = append(attrs, slog.String("grpc_code", a.grpcCode))
	}
	l.LogAttrs(ctx, slog.LevelInfo, accessMessage, attrs...)
}

// traceIDOf returns the trace id of a W3C traceparent
// (00-TRACEID-SPANID-FLAGS), or "" when it is not one.
func traceIDOf(tp string) string {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' {
		return ""
	}
	id := tp[3:35]
	if id == strings.Repeat("0", 32) {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ""
		}
	}
	return id
}

// statusClientGone is logged for a request whose client left before any
// answer (nginx's convention).
const statusClientGone = 499

// accessLogged serves a REST request with an access record in its
// context and logs it once answered.
func (g *Gateway) accessLogged(ctx context.Context, w http.ResponseWriter, r *http.Request, a *access) {
	a.path = r.URL.Path
	a.requestID = w.Header().Get(headerRequestID)
	a.trace(ctx, r.Header.Get(headerTraceParent))
	rec, ok := w.(*statusRecorder) // the trace's, when tracing is on
	if !ok {
		rec = &statusRecorder{ResponseWriter: w}
	}
	defer func() {
		a.status = rec.status
		if a.status == 0 {
			a.status = http.StatusOK
			if r.Context().Err() != nil {
				a.status = statusClientGone
			}
		}
		a.log(r.Context(), g.opts.logger)
	}()
	g.serve(context.WithValue(ctx, accessKey{}, a), rec, r)
}

// gatewayServicePrefix starts the full names of GatewayService's methods.
const gatewayServicePrefix = "/" + gatewayServiceName + "/"

// accessUnary logs one line per GatewayService call (not health or
// reflection).
func (g *Gateway) accessUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, gatewayServicePrefix) {
			return handler(ctx, req)
		}
		a := g.newAccess(ctx, "grpc", info.FullMethod)
		if a == nil {
			return handler(ctx, req)
		}
		resp, err := handler(context.WithValue(ctx, accessKey{}, a), req)
		a.grpcCode = status.Code(err).String()
		switch {
		case err != nil:
			a.status = httpStatus(socket.FromStatus(err).Code)
		case a.status == 0:
			a.status = http.StatusOK
		}
		a.log(ctx, g.opts.logger)
		return resp, err
	}
}
