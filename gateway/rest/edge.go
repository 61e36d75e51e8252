// Package rest is the gateway's REST edge: it translates an HTTP request
// into an invocation for the core (package invoke) and the core's answer
// into the standard envelope, with the HTTP status its code maps to.
// Everything HTTP-specific lives here: paths, headers (X-Request-Id,
// Timeout, Idempotency-Key, If-None-Match, Cache-Control), body limits
// and media types, CORS, the versions' OpenAPI documents, and the one
// ResponseWriter wrapper, which notes the status for the observers.
//
//	e := rest.New(core, obs, rest.Options{Logger: logger})
//	http.ListenAndServe(":8080", e) // GET /v1/users/1 → GET_USER 1
package rest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/services/socket"
)

// Options are what the edge serves besides the routes.
type Options struct {
	// Logger logs panics. Default: discard.
	Logger *slog.Logger
	// GatewayService serves the paths under /gateway/ (GatewayService's
	// REST binding), with the request's record in its context
	// (observe.FromContext); the paths it does not take it hands back to
	// ServeRoute. nil: every path is a REST path.
	GatewayService http.Handler
	// Before serves what the gateway adds in front of the routes (the
	// demo page) and returns the label its requests are observed under;
	// served is false for a request it leaves to the routes.
	Before func(cfg *config.Config, w http.ResponseWriter, r *http.Request) (label string, served bool)
}

// Edge is the REST edge, an http.Handler.
type Edge struct {
	core *invoke.Core
	obs  observe.Observers
	opts Options
}

// New returns the edge in front of core, telling obs each request's
// events.
func New(core *invoke.Core, obs observe.Observers, opts Options) *Edge {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Edge{core: core, obs: obs, opts: opts}
}

// ServeHTTP serves a request: its request id, its observation record and
// trace context, panics turned into INTERNAL envelopes, then CORS and the
// routes.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ids := requestIDValues(r)
	w.Header()[HeaderRequestID] = ids
	id := ids[0]
	rec := e.obs.NewRecord(observe.ProtocolHTTP, r.Method)
	rec.Path, rec.RequestID, rec.TraceParent = r.URL.Path, id, get(r.Header, HeaderTraceParent)
	sw := newStatusWriter(w)
	ctx := rec.Begin(otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
	defer func() {
		rec.Status, rec.Gone = sw.status, r.Context().Err() != nil
		rec.End(ctx)
		sw.release()
	}()
	e.serve(ctx, sw, r, rec)
}

// serve is ServeHTTP after the request id and the trace context: ctx
// carries the span, rec is the request's record.
func (e *Edge) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, rec *observe.Record) {
	defer func() {
		if p := recover(); p != nil {
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p)
			}
			e.opts.Logger.Error("gateway: panic serving request", "panic", p, "path", r.URL.Path)
			WriteError(w, socket.Errorf(socket.CodeInternal, "internal error"))
		}
	}()
	cfg := e.core.Config()
	if e.opts.Before != nil {
		if label, served := e.opts.Before(cfg, w, r); served {
			rec.Label = label
			return
		}
	}
	if cors(cfg.HTTP.CORS, w, r) {
		return
	}
	if e.opts.GatewayService != nil && strings.HasPrefix(r.URL.Path, "/gateway/") {
		e.opts.GatewayService.ServeHTTP(w, r.WithContext(observe.NewContext(ctx, rec)))
		return
	}
	e.ServeRoute(ctx, w, r, rec)
}
