package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/streamgate/streamgate/services/socket"
)

// accessMessage is the message of the access log's lines.
const accessMessage = "request"

// accessLog is the observer that logs one line per request (a REST
// request, a WebSocket request frame, a GatewayService call) once it
// ends, at Info: who asked for what, what it ran and how it ended. A
// logger that takes no Info lines costs a request one level check.
//
// A line never holds credentials: the principal is the subject the
// credentials proved, never the key or token.
type accessLog struct {
	noObserver
	logger *slog.Logger
}

var _ observer = accessLog{}

// statusClientGone is logged for a request whose client left before any
// answer (nginx's convention).
const statusClientGone = 499

// end writes the line; a call inside a REST request (GatewayService's REST
// binding) is its REST request's line.
func (l accessLog) end(ctx context.Context, r *request) {
	if r.parent != nil || !l.logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	st := r.status
	if st == 0 && r.protocol == protocolHTTP {
		st = http.StatusOK
		if r.gone {
			st = statusClientGone
		}
	}
	path := r.path
	if path == "" && r.protocol == protocolWebSocket {
		path = r.rest.String()
	}
	traceID := ""
	if r.trace.HasTraceID() {
		traceID = r.trace.TraceID().String()
	} else {
		traceID = traceIDOf(r.traceParent)
	}
	route, actions := "", ""
	if r.route != nil {
		route, actions = r.route.name, r.route.actions
	}
	attrs := []slog.Attr{
		slog.String("protocol", r.protocol),
		slog.String("method", r.method),
		slog.String("path", validText(path)),
		slog.String("request_id", r.requestID),
		slog.String("trace_id", traceID),
		slog.String("version", r.version),
		slog.String("route", route),
		slog.String("actions", actions),
		slog.String("principal", r.principal),
		slog.Int("status", st),
		slog.Duration("duration", time.Since(r.start)),
		slog.String("cache", r.cache),
	}
	if r.replayed {
		attrs = append(attrs, slog.Bool("replayed", true))
	}
	if r.grpcCode != "" {
		attrs = append(attrs, slog.String("grpc_code", r.grpcCode))
	}
	l.logger.LogAttrs(ctx, slog.LevelInfo, accessMessage, attrs...)
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

// gatewayServicePrefix starts the full names of GatewayService's methods.
const gatewayServicePrefix = "/" + gatewayServiceName + "/"

// observeUnary is the gRPC edge of GatewayService's calls (not health or
// reflection): each is a request the observers are told of.
func (g *Gateway) observeUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, gatewayServicePrefix) {
			return handler(ctx, req)
		}
		r := g.obs.newRequest(protocolGRPC, info.FullMethod)
		ctx = r.begin(grpcTraceContext(ctx))
		resp, err := handler(withRequest(ctx, r), req)
		r.grpcCode = status.Code(err).String()
		switch {
		case err != nil:
			e := socket.FromStatus(err)
			r.status, r.code = httpStatus(e.Code), string(e.Code)
		case r.status == 0:
			r.status = http.StatusOK
		}
		r.end(ctx)
		return resp, err
	}
}
