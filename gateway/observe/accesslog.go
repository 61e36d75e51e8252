package observe

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// accessMessage is the message of the access log's lines.
const accessMessage = "request"

// AccessLog is the observer that logs one line per request (a REST
// request, a WebSocket request frame, a GatewayService call) once it
// ends, at Info: who asked for what, what it ran and how it ended.
//
// Given a logger whose handler is a LogHandler (the commands'), it
// writes each line itself, byte for byte as slog would, and a level
// above Info costs a request one branch; given any other logger, it
// logs through slog, and a logger that takes no Info lines costs a
// request one level check.
//
// A line never holds credentials: the principal is the subject the
// credentials proved, never the key or token.
type AccessLog struct {
	NoObserver
	logger *slog.Logger
	direct *LogHandler // the logger's handler, when it writes the lines itself
	on     bool        // false when direct takes no Info lines
}

var _ Observer = AccessLog{}

// NewAccessLog returns the observer that logs to logger.
func NewAccessLog(logger *slog.Logger) AccessLog {
	l := AccessLog{logger: logger, on: true}
	if h, ok := logger.Handler().(*LogHandler); ok && h.direct {
		l.direct, l.on = h, h.level <= slog.LevelInfo
	}
	return l
}

// End writes the line; a call inside a REST request (GatewayService's REST
// binding) is its REST request's line.
func (l AccessLog) End(ctx context.Context, r *Record) {
	if !l.on || r.Parent != nil {
		return
	}
	if l.direct != nil {
		l.direct.writeAccess(r, time.Now())
		return
	}
	if !l.logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	l.log(ctx, r, time.Now())
}

// log logs r's line through slog, ended at now (the line's time, and the
// end of its duration).
func (l AccessLog) log(ctx context.Context, r *Record, now time.Time) {
	a := accessOf(r)
	traceID := a.traceID
	if a.trace.IsValid() {
		traceID = a.trace.String()
	}
	attrs := []slog.Attr{
		slog.String("protocol", r.Protocol),
		slog.String("method", r.Method),
		slog.String("path", strings.ToValidUTF8(r.Path, "\uFFFD")),
		slog.String("request_id", r.RequestID),
		slog.String("trace_id", traceID),
		slog.String("version", r.Version),
		slog.String("route", a.route),
		slog.String("actions", a.actions),
		slog.String("principal", r.Principal),
		slog.Int("status", a.status),
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

// access is what an access line says beyond the record's own fields.
type access struct {
	status         int
	trace          trace.TraceID // the request's trace; else traceID
	traceID        string        // the client's traceparent's trace id, or ""
	route, actions string
}

// accessOf returns r's access line's derived fields: a REST request that
// wrote nothing answered 200 (or 499 when its client left first).
func accessOf(r *Record) access {
	a := access{status: r.Status}
	if a.status == 0 && r.Protocol == ProtocolHTTP {
		a.status = http.StatusOK
		if r.Gone {
			a.status = StatusClientGone
		}
	}
	if r.Trace.HasTraceID() {
		a.trace = r.Trace.TraceID()
	} else {
		a.traceID = traceIDOf(r.TraceParent)
	}
	if r.Route != nil {
		a.route, a.actions = r.Route.Name, r.Route.Actions
	}
	return a
}

// zeroTraceID is the all-zero trace id W3C calls invalid.
const zeroTraceID = "00000000000000000000000000000000"

// traceIDOf returns the trace id of a W3C traceparent
// (00-TRACEID-SPANID-FLAGS), or "" when it is not one.
func traceIDOf(tp string) string {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' {
		return ""
	}
	id := tp[3:35]
	if id == zeroTraceID {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ""
		}
	}
	return id
}
