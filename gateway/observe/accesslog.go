package observe

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// accessMessage is the message of the access log's lines.
const accessMessage = "request"

// AccessLog is the observer that logs one line per request (a REST
// request, a WebSocket request frame, a GatewayService call) once it
// ends, at Info: who asked for what, what it ran and how it ended. A
// logger that takes no Info lines costs a request one level check.
//
// A line never holds credentials: the principal is the subject the
// credentials proved, never the key or token.
type AccessLog struct {
	NoObserver
	logger *slog.Logger
}

var _ Observer = AccessLog{}

// NewAccessLog returns the observer that logs to logger.
func NewAccessLog(logger *slog.Logger) AccessLog { return AccessLog{logger: logger} }

// End writes the line; a call inside a REST request (GatewayService's REST
// binding) is its REST request's line.
func (l AccessLog) End(ctx context.Context, r *Record) {
	if r.Parent != nil || !l.logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	st := r.Status
	if st == 0 && r.Protocol == ProtocolHTTP {
		st = http.StatusOK
		if r.Gone {
			st = StatusClientGone
		}
	}
	traceID := ""
	if r.Trace.HasTraceID() {
		traceID = r.Trace.TraceID().String()
	} else {
		traceID = traceIDOf(r.TraceParent)
	}
	route, actions := "", ""
	if r.Route != nil {
		route, actions = r.Route.Name, r.Route.Actions
	}
	now := time.Now() // the line's time, and the end of its duration
	attrs := []slog.Attr{
		slog.String("protocol", r.Protocol),
		slog.String("method", r.Method),
		slog.String("path", strings.ToValidUTF8(r.Path, "\uFFFD")),
		slog.String("request_id", r.RequestID),
		slog.String("trace_id", traceID),
		slog.String("version", r.Version),
		slog.String("route", route),
		slog.String("actions", actions),
		slog.String("principal", r.Principal),
		slog.Int("status", st),
		slog.Duration("duration", now.Sub(r.Start)),
		slog.String("cache", r.Cache),
	}
	if r.Replayed {
		attrs = append(attrs, slog.Bool("replayed", true))
	}
	if r.GRPCCode != "" {
		attrs = append(attrs, slog.String("grpc_code", r.GRPCCode))
	}
	// The record goes to the handler as Logger.LogAttrs would send it,
	// without the caller's PC, which costs a stack walk per request and
	// would name this line anyway.
	rec := slog.NewRecord(now, slog.LevelInfo, accessMessage, 0)
	rec.AddAttrs(attrs...)
	_ = l.logger.Handler().Handle(ctx, rec) // a log has no one to tell
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
