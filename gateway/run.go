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
	"github.com/streamgate/streamgate/services/socket"
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
	Dial []socket.DialOption
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
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 15 * time.Second
	}
	if o.Env == nil {
		o.Env = os.Getenv
	}
	data := o.ConfigData
	if data == nil {
		var err error
		if data, err = os.ReadFile(o.ConfigPath); err != nil {
			return err
		}
	}
	cfg, err := config.Parse(o.ConfigPath, data, o.Env)
	if err != nil {
		return err
	}
	if o.ConfigData != nil {
		cfg.Path = "" // not a file to read again
	}
	serverTLS, err := listenTLS(o, cfg)
	if err != nil {
		return err
	}
	if o.Metrics == nil {
		o.Metrics = NewRegistry()
	}
	opts := []Option{WithLogger(o.Logger), WithDialOptions(o.Dial...), WithEnv(o.Env), WithTargets(o.Targets), WithServiceTLS(o.ServiceTLS), WithMetrics(o.Metrics)}
	if o.InsecurePlaintext {
		opts = append(opts, WithInsecurePlaintext())
	}
	if o.Demo {
		opts = append(opts, WithDemo())
	}
	// The ports first: a port in use is reported before any service is
	// dialed (and before any log line about services not answering).
	httpLis, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return err
	}
	grpcLis, err := net.Listen("tcp", o.GRPCAddr)
	if err != nil {
		_ = httpLis.Close()
		return err
	}
	var adminLis net.Listener
	if o.AdminAddr != "" {
		if adminLis, err = net.Listen("tcp", o.AdminAddr); err != nil {
			_ = httpLis.Close()
			_ = grpcLis.Close()
			return err
		}
	}
	g, err := New(cfg, append(opts, o.Options...)...)
	if err != nil {
		_ = httpLis.Close()
		_ = grpcLis.Close()
		if adminLis != nil {
			_ = adminLis.Close()
		}
		return err
	}
	addrs := Addrs{HTTP: httpLis.Addr().String(), GRPC: grpcLis.Addr().String()}
	var adminSrv *http.Server
	if adminLis != nil {
		addrs.Admin = adminLis.Addr().String()
		adminSrv = &http.Server{Handler: g.adminHandler(o.Pprof), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = adminSrv.Serve(adminLis) }()
	}
	hs := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second, // a slow body cannot hold a request open for ever
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	gs := grpc.NewServer(append(grpcCreds(serverTLS), grpc.ChainUnaryInterceptor(g.grpc.ObserveUnary(), recoverUnary(o.Logger)))...)
	g.RegisterGRPC(gs)
	hc := newReadiness(g)
	healthpb.RegisterHealthServer(gs, hc)
	go hc.watch(readinessInterval)
	reflection.Register(gs)

	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(hs, httpLis, serverTLS) }()
	go func() { errc <- gs.Serve(grpcLis) }()
	if o.Ready != nil {
		o.Ready(addrs)
	}
	o.Logger.Info("gateway serving", "http", addrs.HTTP, "grpc", addrs.GRPC, "admin", addrs.Admin, "config", o.ConfigPath, "tls", serverTLS != nil)

	var failure error
loop:
	for {
		select {
		case <-o.Reloads:
			if _, err := g.Reload(); err != nil {
				o.Logger.Error("gateway: reload failed; the old configuration stays", "err", err)
			}
		case err := <-errc:
			failure = err
			break loop
		case <-ctx.Done():
			break loop
		}
	}

	// Stop accepting, let requests in flight finish, then close.
	drainStart := time.Now()
	g.draining.Store(true)
	hc.Shutdown()
	// Logged once readiness is off: whoever reads the line (a test, an
	// operator) finds /readyz and gRPC health already NOT_SERVING.
	o.Logger.Info("gateway draining", "timeout", o.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	_ = hs.Shutdown(sctx)
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		gs.Stop()
		<-stopped
	}
	g.Close(sctx)
	if adminSrv != nil {
		_ = adminSrv.Shutdown(sctx)
	}
	o.Logger.Info("gateway drained", "took", time.Since(drainStart).Round(time.Millisecond))
	if failure != nil && !errors.Is(failure, http.ErrServerClosed) && !errors.Is(failure, grpc.ErrServerStopped) {
		return failure
	}
	return nil
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
