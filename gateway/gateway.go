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
	"strings"
	"sync"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/streamgate/streamgate/gateway/cache"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/idempotency"
	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/gateway/wsedge"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/services/socket"
)

// Gateway serves the REST edge (it is an http.Handler) and GatewayService.
type Gateway struct {
	opts options
	mux  *runtime.ServeMux // GatewayService's REST binding

	core     *invoke.Core      // runs every edge's invocations (gateway/invoke)
	cache    *cache.Cache      // the core's response cache; nil when caching is off
	flights  coalesce.Group    // the core's reads in flight
	stats    *observe.Stats    // per-route cache and coalescing counters, for ListRoutes (an observer)
	metrics  *observe.Metrics  // nil without WithMetrics (an observer)
	obs      observe.Observers // told every request's events
	draining atomic.Bool       // set when a drain starts: not ready any more
	sockets  *wsedge.Edge      // the WebSocket endpoint (wscore.go)
}

// Option tunes a Gateway.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	dial       []socket.DialOption
	env        func(string) string
	targets    map[string]string
	cacheBytes int64 // 0: no cache
	noCoalesce bool
	demo       bool              // serve the demo page at /demo/
	idem       idempotency.Store // nil: from the configuration
	metrics    prometheus.Registerer
	socket     SocketLimits

	serviceTLS        *config.LinkTLS // links the configuration gives no TLS
	insecurePlaintext bool            // plaintext links may leave the machine

	eventInvalidated func(tags []string) // tests: called after an event's invalidation
}

// WithIdempotencyStore keeps Idempotency-Key leases and answers in s for
// every configuration, instead of the store the configuration chooses (in
// this process, bounded by http.idempotency; in Redis when redis is set).
func WithIdempotencyStore(s idempotency.Store) Option { return func(o *options) { o.idem = s } }

// DefaultCacheBytes is the response cache's default bound.
const DefaultCacheBytes = 64 << 20

// WithCacheSize bounds the response cache's memory in bytes; 0 turns the
// cache off. Default DefaultCacheBytes.
func WithCacheSize(bytes int64) Option { return func(o *options) { o.cacheBytes = bytes } }

// WithoutCoalescing sends every read to its service, even when an
// identical read is in flight. Default: identical reads in flight share one
// request (routes can opt out with coalesce: false).
func WithoutCoalescing() Option { return func(o *options) { o.noCoalesce = true } }

// WithLogger sets where the gateway logs panics and reloads. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithEnv sets where Reload looks up the env vars the configuration names
// (key_env, secret_env, hs256_secret_env). Default os.Getenv.
func WithEnv(env func(string) string) Option { return func(o *options) { o.env = env } }

// WithTargets overrides service targets by service name in every
// configuration the gateway applies, including reloaded ones (the stack
// uses it to point the example configuration at services on free ports).
func WithTargets(targets map[string]string) Option {
	return func(o *options) { o.targets = targets }
}

// WithDialOptions adds options to every service client (for example a
// custom dialer in tests).
func WithDialOptions(opts ...socket.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// New returns a gateway serving cfg. It dials the services in the
// background; requests wait for them within their timeouts.
func New(cfg *config.Config, opts ...Option) (*Gateway, error) {
	g := &Gateway{opts: options{logger: slog.New(slog.DiscardHandler), env: os.Getenv, cacheBytes: DefaultCacheBytes}}
	for _, o := range opts {
		o(&g.opts)
	}
	g.sockets = wsedge.New(wsCore{g}, g.opts.socket, g.opts.logger)
	if err := g.observers(); err != nil {
		return nil, err
	}
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
		return nil, err
	}
	g.core = core
	g.mux = runtime.NewServeMux(
		runtime.WithRoutingErrorHandler(g.notGatewayService),
		runtime.WithErrorHandler(grpcError),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{},
		}),
		runtime.WithIncomingHeaderMatcher(forwardHeader),
		runtime.WithOutgoingHeaderMatcher(answerHeader),
		runtime.WithForwardResponseRewriter(envelopeResponse),
		runtime.WithForwardResponseOption(invokeStatus),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithDisablePathLengthFallback(),
	)
	if err := g.mux.HandlePath(http.MethodGet, "/gateway/v1/openapi.json", serveGRPCOpenAPI); err != nil {
		return nil, err
	}
	if err := gatewayv1.RegisterGatewayServiceHandlerServer(context.Background(), g.mux, grpcService{g: g}); err != nil {
		return nil, err
	}
	return g, nil
}

// observers makes the gateway's observers: the route stats, the metrics
// (WithMetrics), the access log and the tracer.
func (g *Gateway) observers() error {
	g.stats = observe.NewStats()
	list := []observe.Observer{g.stats}
	if g.opts.metrics != nil {
		m, err := observe.NewMetrics(g.opts.metrics, invoke.ReasonStoreDown)
		if err != nil {
			return fmt.Errorf("gateway: WithMetrics: %w", err)
		}
		g.metrics = m
		list = append(list, m)
	}
	g.obs = observe.New(append(list, observe.NewAccessLog(g.opts.logger), observe.NewTracer())...)
	return nil
}

// serviceLink is the TLS of the link to a service (invoke.Options.Link).
func (g *Gateway) serviceLink(cfg *config.Config, svc *config.Service) (string, []socket.DialOption, error) {
	link, err := g.linkTLS(cfg, svc)
	if err != nil {
		return "", nil, err
	}
	return linkID(link), linkDial(link, svc.Target), nil
}

// ServeHTTP serves the REST edge: request ids, CORS, panics turned into
// INTERNAL envelopes, then routing.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if version, ok := g.socketVersion(r); ok {
		g.serveSocket(w, r, version) // each of its frames is a request of its own
		return
	}
	id := requestID(r)
	w.Header().Set(headerRequestID, id)
	req := g.obs.NewRecord(observe.ProtocolHTTP, r.Method)
	req.Path, req.RequestID, req.TraceParent = r.URL.Path, id, r.Header.Get(headerTraceParent)
	sw := newStatusWriter(w)
	ctx := req.Begin(otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
	defer func() {
		req.Status, req.Gone = sw.status, r.Context().Err() != nil
		req.End(ctx)
		sw.release()
	}()
	g.serve(ctx, sw, r, req)
}

// serve is ServeHTTP after the request id and the trace context: ctx
// carries the span, req is the request's record.
func (g *Gateway) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, req *observe.Record) {
	defer func() {
		if p := recover(); p != nil {
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p)
			}
			g.opts.logger.Error("gateway: panic serving request", "panic", p, "path", r.URL.Path)
			writeError(w, socket.Errorf(socket.CodeInternal, "internal error"))
		}
	}()
	t := g.core.Acquire()
	cfg := t.Config()
	t.Release()
	if g.isDemo(cfg, r) {
		req.Label = routeDemo
		serveDemo(w, r)
		return
	}
	if cors(cfg.HTTP.CORS, w, r) {
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/gateway/") {
		g.serveREST(ctx, w, r, req)
		return
	}
	r = r.WithContext(observe.NewContext(ctx, req))
	// GatewayService's REST binding and its OpenAPI document; the paths
	// it does not take are REST paths like any other.
	req.Label = routeGatewayService
	for _, s := range strings.Split(r.URL.EscapedPath(), "/") {
		if invoke.DotSegment(s) {
			writeError(w, invoke.DotSegmentsError())
			return
		}
	}
	if r.Body != nil {
		// GatewayService's REST binding decodes the body itself: bound it.
		limit := cfg.HTTP.MaxBodyBytes
		if r.ContentLength > limit {
			writeEnvelope(w, invoke.StatusTooLarge, nil, invoke.BodyTooLarge(limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	g.mux.ServeHTTP(w, r)
}

// RegisterGRPC registers GatewayService on a gRPC server.
func (g *Gateway) RegisterGRPC(s *grpc.Server) {
	gatewayv1.RegisterGatewayServiceServer(s, grpcService{g: g})
}

// Apply puts a new configuration in force atomically: requests in flight
// finish on the old one; new requests see the new one.
func (g *Gateway) Apply(cfg *config.Config) error { return g.core.Apply(cfg) }

// Reload re-reads the configuration file in force and applies it. On any
// error the old configuration stays.
func (g *Gateway) Reload() (*config.Config, error) {
	t := g.core.Acquire()
	path := t.Config().Path
	t.Release()
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

// notGatewayService serves the /gateway/… requests GatewayService's
// patterns do not take as REST requests (a version may be named gateway).
func (g *Gateway) notGatewayService(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, status int) {
	if (status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented) && strings.Count(r.URL.Path, "/") > 4 {
		// A path GatewayService takes with another method (ListRoutes'),
		// longer than any REST route's.
		writeEnvelope(w, invoke.StatusMethodNotAllowed, nil, socket.Errorf(socket.CodeNotSupported, "method %s is not supported here", r.Method))
		return
	}
	req := observe.FromContext(ctx)
	req.Label = "" // a REST path
	g.serveREST(ctx, w, r, req)
}

// grpcError answers errors of the generated GatewayService handlers.
func grpcError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, err error) {
	var he *runtime.HTTPStatusError
	if errors.As(err, &he) {
		writeEnvelope(w, he.HTTPStatus, nil, socket.Errorf(socket.CodeInvalidArgument, "%v", he.Err))
		return
	}
	e := socket.FromStatus(err)
	if st, ok := status.FromError(err); ok && st.Message() != "" {
		// These statuses are GatewayService's own (it runs in this
		// process): their messages are written to be shown.
		e = socket.Errorf(e.Code, "%s", st.Message()).WithCause(err)
	}
	writeError(w, e)
}

// envelopeResponse wraps GatewayService answers other than Invoke's
// (which is an envelope already) in the standard envelope.
func envelopeResponse(_ context.Context, resp proto.Message) (any, error) {
	if _, ok := resp.(*gatewayv1.InvokeResponse); ok {
		return resp, nil
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
	if err != nil {
		return nil, err
	}
	return envelope.New(b, nil), nil
}

// invokeStatus gives the REST binding of Invoke the status the route
// would have answered with.
func invokeStatus(_ context.Context, w http.ResponseWriter, resp proto.Message) error {
	if r, ok := resp.(*gatewayv1.InvokeResponse); ok && r.GetHttpStatus() != 0 {
		w.WriteHeader(int(r.GetHttpStatus()))
	}
	return nil
}

// forwardHeader passes the edge's credentials and ids to GatewayService.
func forwardHeader(key string) (string, bool) {
	switch http.CanonicalHeaderKey(key) {
	case headerAPIKey, headerRequestID, headerIdempotencyKey, headerTraceParent, headerTraceState:
		return key, true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// answerHeader gives Invoke's REST binding the edge's own answer headers
// (Idempotent-Replayed, Retry-After) under their HTTP names.
func answerHeader(key string) (string, bool) {
	switch key {
	case metadataReplayed:
		return headerReplayed, true
	case metadataRetryAfter:
		return headerRetryAfter, true
	}
	return runtime.MetadataHeaderPrefix + key, true
}

// metadataValue returns the first value of a metadata key.
func metadataValue(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// WithMetrics registers the gateway's Prometheus metrics with reg (see
// README, "Metrics"); when reg is also a prometheus.Gatherer (a
// *prometheus.Registry), Run's admin listener serves it at /metrics.
// Gateways registered with one reg share their series. Default: no
// metrics.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(o *options) { o.metrics = reg }
}

// NewRegistry returns a Prometheus registry with the Go runtime and
// process collectors, for a process's /metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// routeGatewayService labels the requests of GatewayService's REST
// binding under /gateway/ in the metrics.
const routeGatewayService = "gateway_service"

// statusWriter is the REST edge's one ResponseWriter wrapper: it notes
// the first final status written, for the observers.
type statusWriter struct {
	http.ResponseWriter
	status int
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// newStatusWriter wraps w until release.
func newStatusWriter(w http.ResponseWriter) *statusWriter {
	sw := statusWriters.Get().(*statusWriter)
	*sw = statusWriter{ResponseWriter: w}
	return sw
}

// release recycles the wrapper once the request is over.
func (w *statusWriter) release() {
	*w = statusWriter{}
	statusWriters.Put(w)
}

// WriteHeader notes the first final status.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
