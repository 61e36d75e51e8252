// Package admin is the gateway's admin listener: GET /metrics, GET
// /healthz (the process is up), GET /readyz (whether the gateway takes
// traffic, and the state of what it depends on) and, when asked for,
// net/http/pprof under /debug/pprof/. It carries no client data.
package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/rest"
	"github.com/streamgate/streamgate/status"
)

// Options are what the admin listener reports on.
type Options struct {
	// Metrics serves GET /metrics.
	Metrics http.Handler
	// Health is the state of the services and Redis of the configuration
	// in force (invoke.Core.Health).
	Health func(context.Context) invoke.Health
	// Draining reports whether a drain has started.
	Draining func() bool
	// Pprof adds net/http/pprof's handlers: off by default, profiles
	// reveal the program's internals.
	Pprof bool
}

// Handler serves the admin endpoints.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", o.Metrics)
	if o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		rest.WriteEnvelope(w, http.StatusOK, []byte(`"ok"`), nil)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		serveReport(w, Readiness(o.Health(r.Context()), o.Draining()))
	})
	return mux
}

// Report is the body of /readyz: whether the gateway takes traffic, and
// the state of each thing it depends on.
//
// An unreachable Redis does not make the gateway unready: every gateway
// shares one Redis, so taking them all out of service for it would stop
// reads and plain writes too, which are answered without it (reads by
// their services with X-Cache: unavailable, writes with their
// invalidation retried in the background). Only requests that need the
// Idempotency-Key store fail, at once, with 503 and Retry-After. The
// report says "degraded" and names what is unavailable, for alerts.
type Report struct {
	// Status is "ready", "degraded" (ready, but Redis is unavailable)
	// or "unready" (a service has no ready stream, or a drain started).
	Status string `json:"status"`
	// Services is "ready" when every service has a ready stream.
	Services string `json:"services"`
	// UnreadyServices names the services without a ready stream.
	UnreadyServices []string `json:"unready_services,omitempty"`
	// Draining is set from the start of a drain.
	Draining bool `json:"draining"`
	// Cache is "off", "local" (generations in the process), "ok" or
	// "unavailable" (its Redis does not answer).
	Cache string `json:"cache"`
	// IdempotencyStore is "memory", "ok" or "unavailable" (its Redis does
	// not answer).
	IdempotencyStore string `json:"idempotency_store"`
	// Events is "off", "ok" or "unavailable" (the events: block's NATS
	// server does not answer: WebSocket subscriptions fail meanwhile).
	Events string `json:"events,omitempty"`
}

// Readiness is the report of h, while draining or not.
func Readiness(h invoke.Health, draining bool) Report {
	rep := Report{Services: "ready", UnreadyServices: h.UnreadyServices, Draining: draining, Cache: h.Cache, IdempotencyStore: h.IdempotencyStore, Events: h.Events}
	if len(rep.UnreadyServices) > 0 {
		rep.Services = "unready"
	}
	switch {
	case rep.Draining || rep.Services != "ready":
		rep.Status = "unready"
	case rep.Cache == "unavailable" || rep.IdempotencyStore == "unavailable" || rep.Events == "unavailable":
		rep.Status = "degraded"
	default:
		rep.Status = "ready"
	}
	return rep
}

// serveReport answers /readyz: 200 with the report while the gateway
// takes traffic ("ready" or "degraded"), 503 with it in the error's
// details otherwise.
func serveReport(w http.ResponseWriter, rep Report) {
	if rep.Status == "unready" {
		msg := "no ready stream to " + strings.Join(rep.UnreadyServices, ", ")
		if rep.Draining {
			msg = "the gateway is draining"
		}
		rest.WriteError(w, status.Errorf(status.CodeUnavailable, "%s", msg).WithDetails(map[string]any{
			"services": rep.Services, "unready_services": rep.UnreadyServices, "draining": rep.Draining, "cache": rep.Cache, "idempotency_store": rep.IdempotencyStore, "events": rep.Events,
		}))
		return
	}
	b, err := json.Marshal(rep)
	if err != nil {
		rest.WriteError(w, status.Errorf(status.CodeInternal, "internal error"))
		return
	}
	rest.WriteEnvelope(w, http.StatusOK, b, nil)
}
