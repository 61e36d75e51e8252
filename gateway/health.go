package gateway

import (
	"context"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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
