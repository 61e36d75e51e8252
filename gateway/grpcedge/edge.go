// Package grpcedge is the gateway's gRPC edge: GatewayService (Invoke,
// ListRoutes, Reload) on a gRPC server and through its REST binding under
// /gateway/ (grpc-gateway), and the interceptor that makes each call a
// request the observers are told of. Invoke builds an invocation from the
// request and its metadata and runs it on the core (package invoke), as
// REST runs a request.
//
//	e, _ := grpcedge.New(core, obs, grpcedge.Options{Stats: stats, Reload: reload, Routes: restEdge.ServeRoute})
//	s := grpc.NewServer(grpc.ChainUnaryInterceptor(e.ObserveUnary()))
//	e.Register(s)
package grpcedge

import (
	"context"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/observe"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	"github.com/streamgate/streamgate/status"
)

// Options are what GatewayService needs besides the core.
type Options struct {
	// Stats are the route stats ListRoutes shows.
	Stats *observe.Stats
	// Reload re-reads the configuration file and applies it (Reload).
	Reload func() (*config.Config, error)
	// Routes serves a path under /gateway/ that GatewayService's REST
	// binding does not take, as the REST edge serves any path.
	Routes func(ctx context.Context, w http.ResponseWriter, r *http.Request, rec *observe.Record)
}

// Edge is GatewayService and its REST binding.
type Edge struct {
	core   *invoke.Core
	obs    observe.Observers
	stats  *observe.Stats
	reload func() (*config.Config, error)
	routes func(ctx context.Context, w http.ResponseWriter, r *http.Request, rec *observe.Record)
	mux    *runtime.ServeMux // the REST binding
}

// New returns the edge in front of core, telling obs each call's events.
func New(core *invoke.Core, obs observe.Observers, o Options) (*Edge, error) {
	e := &Edge{core: core, obs: obs, stats: o.Stats, reload: o.Reload, routes: o.Routes}
	mux, err := e.newMux()
	if err != nil {
		return nil, err
	}
	e.mux = mux
	return e, nil
}

// Register registers GatewayService on a gRPC server.
func (e *Edge) Register(s *grpc.Server) {
	gatewayv1.RegisterGatewayServiceServer(s, service{e: e})
}

// servicePrefix starts the full names of GatewayService's methods.
var servicePrefix = "/" + gatewayv1.GatewayService_ServiceDesc.ServiceName + "/"

// ObserveUnary is the gRPC edge of GatewayService's calls (not health or
// reflection): each is a request the observers are told of.
func (e *Edge) ObserveUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, servicePrefix) {
			return handler(ctx, req)
		}
		r := e.obs.NewRecord(observe.ProtocolGRPC, info.FullMethod)
		ctx = r.Begin(grpcTraceContext(ctx))
		resp, err := handler(observe.NewContext(ctx, r), req)
		r.GRPCCode = grpcstatus.Code(err).String()
		switch {
		case err != nil:
			se := status.FromGRPC(err)
			r.Status, r.Code = invoke.HTTPStatus(se.Code), string(se.Code)
		case r.Status == 0:
			r.Status = http.StatusOK
		}
		r.End(ctx)
		return resp, err
	}
}

// routeGatewayService labels the requests of GatewayService's REST
// binding under /gateway/ in the metrics.
const routeGatewayService = "gateway_service"
