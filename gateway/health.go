package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/streamgate/streamgate/gateway/rest"
	"github.com/streamgate/streamgate/services/socket"
)

// readinessInterval is how often Run tells gRPC health watchers whether
// the gateway is ready; a Check always answers from the state of the
// moment.
const readinessInterval = time.Second

// readiness is the gRPC health service of Run: SERVING (for the server as
// a whole and for GatewayService) exactly when Ready says so, and
// NOT_SERVING for good once Shutdown is called at the start of a drain.
type readiness struct {
	*health.Server
	g    *Gateway
	stop chan struct{} // closed by Shutdown: ends watch
	done chan struct{} // closed when watch returns
}

// gatewayServiceName is GatewayService's full name, as health checks
// name it.
const gatewayServiceName = "streamgate.gateway.v1.GatewayService"

func newReadiness(g *Gateway) *readiness {
	r := &readiness{Server: health.NewServer(), g: g, stop: make(chan struct{}), done: make(chan struct{})}
	r.update()
	return r
}

// update sets both names' status from Ready.
func (r *readiness) update() {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if r.g.Ready() {
		st = healthpb.HealthCheckResponse_SERVING
	}
	r.SetServingStatus("", st)
	r.SetServingStatus(gatewayServiceName, st)
}

// watch updates the status every interval until Shutdown.
func (r *readiness) watch(interval time.Duration) {
	defer close(r.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.update()
		case <-r.stop:
			return
		}
	}
}

// Check answers from the state of the moment.
func (r *readiness) Check(ctx context.Context, in *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	select {
	case <-r.stop:
	default:
		r.update()
	}
	return r.Server.Check(ctx, in)
}

// Shutdown stops watch and says NOT_SERVING from now on.
func (r *readiness) Shutdown() {
	close(r.stop)
	<-r.done
	r.Server.Shutdown()
}

// readyReport is the body of /readyz: whether the gateway takes traffic,
// and the state of each thing it depends on.
//
// An unreachable Redis does not make the gateway unready: every gateway
// shares one Redis, so taking them all out of service for it would stop
// reads and plain writes too, which are answered without it (reads by
// their services with X-Cache: unavailable, writes with their
// invalidation retried in the background). Only requests that need the
// Idempotency-Key store fail, at once, with 503 and Retry-After. The
// report says "degraded" and names what is unavailable, for alerts.
type readyReport struct {
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
}

// readiness reports the gateway's readiness, asking each Redis it uses
// (concurrently, each within its call deadline).
func (g *Gateway) readiness(ctx context.Context) readyReport {
	h := g.core.Health(ctx)
	rep := readyReport{Services: "ready", UnreadyServices: h.UnreadyServices, Draining: g.draining.Load(), Cache: h.Cache, IdempotencyStore: h.IdempotencyStore}
	if len(rep.UnreadyServices) > 0 {
		rep.Services = "unready"
	}
	switch {
	case rep.Draining || rep.Services != "ready":
		rep.Status = "unready"
	case rep.Cache == "unavailable" || rep.IdempotencyStore == "unavailable":
		rep.Status = "degraded"
	default:
		rep.Status = "ready"
	}
	return rep
}

// serveReadyz answers /readyz: 200 with the report while the gateway
// takes traffic ("ready" or "degraded"), 503 with it in the error's
// details otherwise.
func (g *Gateway) serveReadyz(w http.ResponseWriter, r *http.Request) {
	rep := g.readiness(r.Context())
	if rep.Status == "unready" {
		msg := "no ready stream to " + strings.Join(rep.UnreadyServices, ", ")
		if rep.Draining {
			msg = "the gateway is draining"
		}
		rest.WriteError(w, socket.Errorf(socket.CodeUnavailable, "%s", msg).WithDetails(map[string]any{
			"services": rep.Services, "unready_services": rep.UnreadyServices, "draining": rep.Draining, "cache": rep.Cache, "idempotency_store": rep.IdempotencyStore,
		}))
		return
	}
	b, err := json.Marshal(rep)
	if err != nil {
		rest.WriteError(w, socket.Errorf(socket.CodeInternal, "internal error"))
		return
	}
	rest.WriteEnvelope(w, http.StatusOK, b, nil)
}

// handlePprof adds net/http/pprof's handlers under /debug/pprof/.
func handlePprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
