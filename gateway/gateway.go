// Package gateway is streamgate's API gateway: REST and gRPC in front of
// the services' sockets. A YAML file (package config) declares the
// services and, per API version, the resources, routes, pipelines and who
// may call them; the gateway turns each call into frames on the services'
// streams.
//
//	cfg, _ := config.Load("gateway.yaml")
//	g, _ := gateway.New(cfg)
//	defer g.Close(ctx)
//	http.ListenAndServe(":8080", g)        // REST: GET /v1/users/1 → GET_USER 1
//	                                       // and ws://…/v1/socket (streamgate.v1): the same routes and live events
//	g.RegisterGRPC(grpcServer)              // GatewayService.Invoke, ListRoutes, Reload
//
// Run does all of that with listeners, signals and graceful shutdown.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"

	"google.golang.org/grpc"

	"github.com/streamgate/streamgate/gateway/cache"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/grpcedge"
	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/gateway/rest"
	"github.com/streamgate/streamgate/gateway/wsedge"
	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// Gateway is the REST, WebSocket and gRPC edges around one invocation
// core: it is an http.Handler (REST and the WebSocket endpoint) and
// registers GatewayService on gRPC servers.
type Gateway struct {
	opts options

	core    *invoke.Core      // runs every edge's invocations (gateway/invoke)
	rest    *rest.Edge        // REST requests (gateway/rest)
	sockets *wsedge.Edge      // the WebSocket endpoint, GET /{version}/socket (gateway/wsedge)
	grpc    *grpcedge.Edge    // GatewayService and its REST binding (gateway/grpcedge)
	obs     observe.Observers // told every request's events (gateway/observe)
	stats   *observe.Stats    // per-route cache and coalescing counters, for ListRoutes (an observer)
	metrics *observe.Metrics  // nil without WithMetrics (an observer)

	cache    *cache.Cache   // the core's response cache; nil when caching is off
	flights  coalesce.Group // the core's reads in flight
	draining atomic.Bool    // set when a drain starts: not ready any more
}

// New returns a gateway serving cfg. It dials the services in the
// background; requests wait for them within their timeouts.
func New(cfg *config.Config, opts ...Option) (*Gateway, error) {
	g := &Gateway{opts: options{logger: slog.New(slog.DiscardHandler), env: os.Getenv, cacheBytes: DefaultCacheBytes}}
	for _, o := range opts {
		o(&g.opts)
	}
	var err error
	if g.obs, g.stats, g.metrics, err = newObservers(g.opts); err != nil {
		return nil, err
	}
	if err := g.newCore(cfg); err != nil {
		return nil, err
	}
	if err := g.edges(); err != nil {
		g.core.Close(context.Background())
		return nil, err
	}
	return g, nil
}

// newObservers makes the gateway's observers: the route stats, the
// metrics (WithMetrics), the access log and the tracer.
func newObservers(o options) (observe.Observers, *observe.Stats, *observe.Metrics, error) {
	stats := observe.NewStats()
	list := []observe.Observer{stats}
	var metrics *observe.Metrics
	if o.metrics != nil {
		m, err := observe.NewMetrics(o.metrics, invoke.ReasonStoreDown)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("gateway: WithMetrics: %w", err)
		}
		metrics = m
		list = append(list, m)
	}
	return observe.New(append(list, observe.NewAccessLog(o.logger), observe.NewTracer())...), stats, metrics, nil
}

// newCore makes the invocation core with its cache, serving cfg.
func (g *Gateway) newCore(cfg *config.Config) error {
	if g.opts.cacheBytes > 0 {
		g.cache = cache.New(g.opts.cacheBytes, cache.NewLocalGenerations())
	}
	core, err := invoke.New(cfg, invoke.Options{
		Logger:           g.opts.logger,
		Dial:             g.opts.dial,
		Link:             g.serviceLink,
		Targets:          g.opts.targets,
		Cache:            g.cache,
		Coalesce:         !g.opts.noCoalesce,
		Flights:          &g.flights,
		Idempotency:      g.opts.idem,
		Observers:        g.obs,
		EventInvalidated: g.opts.eventInvalidated,
	})
	if err != nil {
		if g.cache != nil {
			g.cache.Close()
		}
		return err
	}
	g.core = core
	return nil
}

// edges makes the edges around the core: REST (with the demo page in
// front of it), GatewayService (with its REST binding under /gateway/)
// and the WebSocket endpoint.
func (g *Gateway) edges() error {
	var err error
	g.grpc, err = grpcedge.New(g.core, g.obs, grpcedge.Options{
		Stats:  g.stats,
		Reload: g.Reload,
		Routes: func(ctx context.Context, w http.ResponseWriter, r *http.Request, rec *observe.Record) {
			g.rest.ServeRoute(ctx, w, r, rec)
		},
	})
	if err != nil {
		return err
	}
	g.rest = rest.New(g.core, g.obs, rest.Options{Logger: g.opts.logger, GatewayService: g.grpc, Before: g.demoPage})
	g.sockets = wsedge.NewOnCore(g.core, g.obs, g.opts.socket, g.opts.logger)
	return nil
}

// serviceLink is the TLS of the link to a service (invoke.Options.Link).
func (g *Gateway) serviceLink(cfg *config.Config, svc *config.Service) (string, []caller.Option, error) {
	link, err := g.linkTLS(cfg, svc)
	if err != nil {
		return "", nil, err
	}
	return linkID(link), linkDial(link, svc.Target), nil
}

// ServeHTTP serves a request on its edge: the WebSocket endpoint's
// upgrades, every other path REST's.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if version, ok := wsedge.Version(g.core.Config(), r); ok {
		g.sockets.ServeUpgrade(w, r, version, g.draining.Load()) // each of its frames is a request of its own
		return
	}
	g.rest.ServeHTTP(w, r)
}

// RegisterGRPC registers GatewayService on a gRPC server.
func (g *Gateway) RegisterGRPC(s *grpc.Server) { g.grpc.Register(s) }

// Apply puts a new configuration in force atomically: requests in flight
// finish on the old one; new requests see the new one.
func (g *Gateway) Apply(cfg *config.Config) error { return g.core.Apply(cfg) }

// Reload re-reads the configuration file in force and applies it. On any
// error the old configuration stays.
func (g *Gateway) Reload() (*config.Config, error) {
	path := g.core.Config().Path
	if path == "" {
		return nil, errors.New("gateway: the configuration was not loaded from a file")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(path, data, g.opts.env)
	if err != nil {
		return nil, err
	}
	if err := g.core.Apply(cfg); err != nil {
		return nil, err
	}
	g.opts.logger.Info("gateway: configuration reloaded", "path", path)
	return cfg, nil
}

// Ready reports whether every service has a ready stream and no drain
// has started.
func (g *Gateway) Ready() bool {
	if g.draining.Load() {
		return false
	}
	t := g.core.Acquire()
	defer t.Release()
	return t.Ready()
}

// Close closes the WebSocket endpoint's sockets politely (1001, after
// their answers in flight), waits (until ctx ends) for requests in flight,
// then closes the service clients and the Redis connection.
func (g *Gateway) Close(ctx context.Context) {
	g.sockets.Drain(ctx)
	g.core.Close(ctx)
}
