package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/rest"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// RunOptions say what Run serves where.
type RunOptions struct {
	// ConfigPath is the YAML configuration file. Required.
	ConfigPath string
	// ConfigData, when not nil, is the configuration itself (an embedded
	// default): ConfigPath then only names it in errors, and the gateway
	// cannot reload it.
	ConfigData []byte
	// HTTPAddr is the REST listener, e.g. "127.0.0.1:8080".
	HTTPAddr string
	// GRPCAddr is the GatewayService listener, e.g. "127.0.0.1:9090".
	GRPCAddr string
	// AdminAddr, when set, serves GET /metrics, GET /healthz (the process is up) and
	// GET /readyz (every service has a ready stream; 503 otherwise; the
	// body reports the cache's and the Idempotency-Key store's Redis too).
	AdminAddr string
	// Demo serves the live demo page at /demo/ on the REST listener (see
	// WithDemo).
	Demo bool
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin
	// listener. Off by default: profiles reveal the program's internals.
	Pprof bool
	// ShutdownTimeout bounds the graceful shutdown. Default 15s.
	ShutdownTimeout time.Duration
	// Reloads, when a value arrives, re-read the configuration (the
	// command sends one on SIGHUP).
	Reloads <-chan struct{}
	// Logger receives the gateway's logs; nil discards them.
	Logger *slog.Logger
	// Ready, if set, is called with the bound addresses once serving.
	Ready func(Addrs)
	// Env looks up the env vars the configuration names; nil means
	// os.Getenv.
	Env func(string) string
	// Targets override service targets by name (see WithTargets).
	Targets map[string]string
	// Dial adds options to every service client.
	Dial []caller.Option
	// Options tune the gateway (cache size, coalescing).
	Options []Option
	// Metrics is the registry the gateway's metrics go to and the admin
	// listener serves at /metrics (the stack shares one with its
	// services). Nil: a registry of Run's own, with the Go runtime and
	// process collectors.
	Metrics *prometheus.Registry
	// ListenTLS, when set, is the REST and gRPC listeners' TLS, instead
	// of the configuration's listen_tls.
	ListenTLS *tls.Config
	// ServiceTLS is the TLS of the links to services whose configuration
	// sets none (see WithServiceTLS).
	ServiceTLS *config.LinkTLS
	// InsecurePlaintext allows plaintext listeners and service links on
	// addresses other than loopback, as the configuration's plaintext:
	// true does; otherwise they are refused. The admin listener (health,
	// no client data) is plaintext wherever it is.
	InsecurePlaintext bool
}

// Addrs are the addresses Run listens on.
type Addrs struct {
	HTTP, GRPC, Admin string
}

// Run serves the REST edge and GatewayService (with health and
// reflection) until ctx ends, then stops accepting, lets requests in
// flight finish within ShutdownTimeout, and returns.
func Run(ctx context.Context, o RunOptions) error {
	o = o.withDefaults()
	cfg, err := o.loadConfig()
	if err != nil {
		return err
	}
	serverTLS, err := listenTLS(o, cfg)
	if err != nil {
		return err
	}
	if o.Metrics == nil {
		o.Metrics = NewRegistry()
	}
	// The ports first: a port in use is reported before any service is
	// dialed (and before any log line about services not answering).
	lis, err := listen(o)
	if err != nil {
		return err
	}
	g, err := New(cfg, append(o.gatewayOptions(), o.Options...)...)
	if err != nil {
		lis.close()
		return err
	}
	s := startServers(g, o, lis, serverTLS)
	if o.Ready != nil {
		o.Ready(s.addrs)
	}
	o.Logger.Info("gateway serving", "http", s.addrs.HTTP, "grpc", s.addrs.GRPC, "admin", s.addrs.Admin, "config", o.ConfigPath, "tls", serverTLS != nil)
	failure := s.serveUntilDone(ctx, o)
	s.drain(o)
	if failure != nil && !errors.Is(failure, http.ErrServerClosed) && !errors.Is(failure, grpc.ErrServerStopped) {
		return failure
	}
	return nil
}

// withDefaults fills in the options Run does not require.
func (o RunOptions) withDefaults() RunOptions {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 15 * time.Second
	}
	if o.Env == nil {
		o.Env = os.Getenv
	}
	return o
}

// loadConfig reads and parses the configuration: ConfigData, or the file
// at ConfigPath.
func (o RunOptions) loadConfig() (*config.Config, error) {
	data := o.ConfigData
	if data == nil {
		var err error
		if data, err = os.ReadFile(o.ConfigPath); err != nil {
			return nil, err
		}
	}
	cfg, err := config.Parse(o.ConfigPath, data, o.Env)
	if err != nil {
		return nil, err
	}
	if o.ConfigData != nil {
		cfg.Path = "" // not a file to read again
	}
	return cfg, nil
}

// gatewayOptions are the options of New that RunOptions imply.
func (o RunOptions) gatewayOptions() []Option {
	opts := []Option{WithLogger(o.Logger), WithDialOptions(o.Dial...), WithEnv(o.Env), WithTargets(o.Targets), WithServiceTLS(o.ServiceTLS), WithMetrics(o.Metrics)}
	if o.InsecurePlaintext {
		opts = append(opts, WithInsecurePlaintext())
	}
	if o.Demo {
		opts = append(opts, WithDemo())
	}
	return opts
}

// listeners are Run's bound ports; admin is nil without an AdminAddr.
type listeners struct {
	http, grpc, admin net.Listener
}

// listen binds the REST, gRPC and admin ports, all or none.
func listen(o RunOptions) (listeners, error) {
	var lis listeners
	var err error
	if lis.http, err = net.Listen("tcp", o.HTTPAddr); err != nil {
		return listeners{}, err
	}
	if lis.grpc, err = net.Listen("tcp", o.GRPCAddr); err != nil {
		lis.close()
		return listeners{}, err
	}
	if o.AdminAddr != "" {
		if lis.admin, err = net.Listen("tcp", o.AdminAddr); err != nil {
			lis.close()
			return listeners{}, err
		}
	}
	return lis, nil
}

// close closes the listeners bound so far.
func (l listeners) close() {
	for _, lis := range []net.Listener{l.http, l.grpc, l.admin} {
		if lis != nil {
			_ = lis.Close()
		}
	}
}

// servers are what Run serves on its listeners, and the gateway behind
// them.
type servers struct {
	g      *Gateway
	addrs  Addrs
	http   *http.Server
	grpc   *grpc.Server
	admin  *http.Server // nil without an admin listener
	health *readiness
	errc   chan error // the REST and gRPC servers' ends
}

// startServers serves the admin, REST and gRPC listeners.
func startServers(g *Gateway, o RunOptions, lis listeners, serverTLS *tls.Config) *servers {
	s := &servers{g: g, addrs: Addrs{HTTP: lis.http.Addr().String(), GRPC: lis.grpc.Addr().String()}, errc: make(chan error, 2)}
	if lis.admin != nil {
		s.addrs.Admin = lis.admin.Addr().String()
		s.admin = &http.Server{Handler: g.adminHandler(o.Pprof), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = s.admin.Serve(lis.admin) }()
	}
	s.http = &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second, // a slow body cannot hold a request open for ever
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	s.grpc = grpc.NewServer(append(grpcCreds(serverTLS), grpc.ChainUnaryInterceptor(g.grpc.ObserveUnary(), recoverUnary(o.Logger)))...)
	g.RegisterGRPC(s.grpc)
	s.health = newReadiness(g)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	go s.health.watch(readinessInterval)
	reflection.Register(s.grpc)
	go func() { s.errc <- serveHTTP(s.http, lis.http, serverTLS) }()
	go func() { s.errc <- s.grpc.Serve(lis.grpc) }()
	return s
}

// serveUntilDone reloads the configuration on each value of o.Reloads
// until ctx ends or a server fails; it returns the failure.
func (s *servers) serveUntilDone(ctx context.Context, o RunOptions) error {
	for {
		select {
		case <-o.Reloads:
			if _, err := s.g.Reload(); err != nil {
				o.Logger.Error("gateway: reload failed; the old configuration stays", "err", err)
			}
		case err := <-s.errc:
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

// drain stops accepting, lets requests in flight finish within
// o.ShutdownTimeout, then closes the gateway and the admin listener.
func (s *servers) drain(o RunOptions) {
	drainStart := time.Now()
	s.g.draining.Store(true)
	s.health.Shutdown()
	// Logged once readiness is off: whoever reads the line (a test, an
	// operator) finds /readyz and gRPC health already NOT_SERVING.
	o.Logger.Info("gateway draining", "timeout", o.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	_ = s.http.Shutdown(sctx)
	stopGRPC(sctx, s.grpc)
	s.g.Close(sctx)
	if s.admin != nil {
		_ = s.admin.Shutdown(sctx)
	}
	o.Logger.Info("gateway drained", "took", time.Since(drainStart).Round(time.Millisecond))
}

// stopGRPC stops gs gracefully, or at once when ctx ends first.
func stopGRPC(ctx context.Context, gs *grpc.Server) {
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		gs.Stop()
		<-stopped
	}
}

// adminHandler serves the health endpoints of the admin listener, and
// pprof's when asked for.
func (g *Gateway) adminHandler(pprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.metrics.Handler())
	if pprof {
		handlePprof(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		rest.WriteEnvelope(w, http.StatusOK, []byte(`"ok"`), nil)
	})
	mux.HandleFunc("GET /readyz", g.serveReadyz)
	return mux
}

// recoverUnary turns a panic in a GatewayService call into INTERNAL.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("gateway: panic in a gRPC call", "method", info.FullMethod, "panic", p)
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}
