// Command streamgate runs streamgate's parts and talks to them.
//
//	streamgate stack [-http ADDR] [-grpc ADDR] [-admin ADDR] [-data DIR] [-store KIND] [-dsn URL] [-cache=false]
//	                                            the whole example system in one process
//	streamgate gateway -config FILE [-http ADDR] [-grpc ADDR]
//	                                            serve the gateway (SIGHUP reloads the config)
//	streamgate service NAME [-listen ADDR]      serve one service (key from STREAMGATE_SERVICE_KEY)
//	streamgate call [-addr ADDR | -gateway ADDR] [-key KEY] SERVICE ACTION [ID] [JSON]
//	                                            send one request to a service or through the gateway
//	streamgate reconcile [-orders ADDR] [-payments ADDR] [-key KEY] [-dry-run] [-json]
//	                                            settle money orders and payments disagree about
//	streamgate load [-c N] [-duration D] [-rate R/s] [-ids FROM-TO] [-H 'Name: value'] URL
//	                                            load a route on loopback and print req/s and latency
//	streamgate bench compare [-rounds N] [-c N] [-duration D] [-markdown FILE] [-svg FILE]
//	                                            compare streamgate with a direct handler and its peers
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

const usage = `usage:
  streamgate stack [-http ADDR] [-grpc ADDR] [-admin ADDR] [-data DIR] [-store sqlite|memory|postgres] [-dsn URL] [-cache=false] [-config FILE] [-service-ports=false]
      Start the users, inventory, orders and payments services (on 127.0.0.1:9101–9104,
      or free ports with -service-ports=false), sandbox payment providers A, B, C and
      the gateway in one process, print the addresses and credentials, then "ready".
      Env: STREAMGATE_ADMIN_KEY, STREAMGATE_JWT_SECRET, STREAMGATE_SERVICE_KEY
      (random when unset). Ctrl-C drains and exits 0.
  streamgate token [-roles a,b] [-ttl D] SUBJECT
      Print an HS256 user JWT (issuer streamgate) signed with STREAMGATE_JWT_SECRET.
  streamgate gateway -config FILE [-http ADDR] [-grpc ADDR] [-admin ADDR] [-shutdown-timeout D]
      Serve the REST edge and GatewayService (gRPC, with health and reflection).
      SIGHUP re-reads the config; SIGTERM/Ctrl-C drains and exits.
  streamgate service NAME [-listen ADDR] [-store sqlite|memory|postgres] [-data DIR] [-dsn URL]
                          [-inventory ADDR] [-gateways A=URL,B=URL,C=URL] [-provider-timeout D] [-version V]
                          [-settle-interval D] [-settle-older-than D]
      Serve one service. Callers (and the services it calls) use the key in
      STREAMGATE_SERVICE_KEY (a random one is printed when unset).
      Services: %s
  streamgate call [-addr ADDR | -gateway ADDR] [-key KEY] [-version V] [-principal SUB] [-timeout D] SERVICE ACTION [ID] [JSON]
      Send one request and print the response envelope: straight to a service's
      socket (-addr, key from STREAMGATE_SERVICE_KEY), or through the gateway's
      gRPC API (-gateway, key: an API key or JWT, default STREAMGATE_ADMIN_KEY),
      which finds the version's route for SERVICE ACTION. Exit status 1 when ok is false.
  streamgate reconcile [-orders ADDR] [-payments ADDR] [-key KEY] [-dry-run] [-json] [-older-than D] [-timeout D]
      Settle what orders (default 127.0.0.1:9103) and payments (127.0.0.1:9104)
      disagree about after faults: payments whose gateway never answered, charges
      without a paid order (marked paid or refunded), purchases stuck paying past
      their lease (released). Acts as an admin with the key (default
      STREAMGATE_SERVICE_KEY; it must be able to name a principal). Prints one line
      per settlement and a summary ("nothing to settle"); exit status 1 on error.
  streamgate load [-method M] [-ids FROM-TO] [-H 'Name: value']... [-body S | -body-file FILE]
                  [-c N] [-duration D] [-rate R/s] [-requests N] [-timeout D] [-json FILE] [-svg FILE] URL
      Drive a route on loopback (each {id} in URL and body is the next id of -ids)
      with -c connections (default 64) for -duration (default 10s): closed loop,
      or at a fixed -rate (latency counted from when each request was due). Prints
      req/s, p50/p90/p99/p99.9/max and errors by status and transport error, with
      a live progress line on a terminal; -json writes the histogram, -svg a chart.
  streamgate bench compare [-systems LIST] [-rounds N] [-c N] [-duration D] [-warmup D] [-users N]
                           [-markdown FILE] [-svg FILE]
      Start each system in turn as its own processes on loopback (direct handler,
      grpc-gateway → unary gRPC, httputil.ReverseProxy → HTTP/JSON, streamgate with
      cache and coalescing off, streamgate with cache on), check every answer, load
      each alike for -rounds rounds (default 2) and print req/s, p50, p99, CPU
      seconds per 10k requests of each process and the ratios to the direct handler.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// dispatch runs a subcommand and returns the exit status.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, strings.Join(run.Names(), ", "))
		return 2
	}
	var err error
	switch args[0] {
	case "stack":
		err = stackCmd(ctx, args[1:], stdout, stderr)
	case "gateway":
		err = gatewayCmd(ctx, args[1:], stderr)
	case "service":
		err = serviceCmd(ctx, args[1:], stderr)
	case "token":
		err = tokenCmd(args[1:], stdout)
	case "call":
		var ok bool
		ok, err = callCmd(ctx, args[1:], stdout)
		if err == nil && !ok {
			return 1
		}
	case "reconcile":
		err = reconcileCmd(ctx, args[1:], stdout)
	case "load":
		err = loadCmd(ctx, args[1:], stdout)
	case "bench":
		err = benchCmd(ctx, args[1:], stdout, stderr)
	default:
		err = fmt.Errorf("unknown command %q", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if re := (*runError)(nil); errors.As(err, &re) {
		fmt.Fprintf(stderr, "streamgate: %s: %v\n", args[0], err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "streamgate: %v\n", err)
		fmt.Fprintf(stderr, usage, strings.Join(run.Names(), ", "))
		return 2
	}
	return 0
}

func stackCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stack", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:8080", "REST listen address")
	grpcAddr := fs.String("grpc", "127.0.0.1:9090", "gateway gRPC listen address")
	adminAddr := fs.String("admin", "127.0.0.1:8081", "admin listen address (/healthz, /readyz)")
	cfg := fs.String("config", "gateway/stack.yaml", "the gateway configuration")
	data := fs.String("data", "./data", "directory of the SQLite files (-store sqlite)")
	store := fs.String("store", run.StoreSQLite, "where the services keep data: sqlite, memory or postgres")
	dsn := fs.String("dsn", "", "PostgreSQL URL for -store postgres")
	cache := fs.Bool("cache", true, "cache and coalesce reads (false: every read reaches its service, for benchmarks)")
	fixedPorts := fs.Bool("service-ports", true, "serve users, inventory, orders and payments on 127.0.0.1:9101–9104 (false: free ports)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var serviceAddrs map[string]string
	if *fixedPorts {
		serviceAddrs = map[string]string{"users": "127.0.0.1:9101", "inventory": "127.0.0.1:9102", "orders": "127.0.0.1:9103", "payments": "127.0.0.1:9104"}
	}
	if *store == run.StorePostgres && *dsn == "" {
		return errors.New("stack: -store postgres needs -dsn")
	}
	return stack.Run(ctx, stack.Options{
		ConfigPath: *cfg, HTTPAddr: *httpAddr, GRPCAddr: *grpcAddr, AdminAddr: *adminAddr,
		Store: *store, DataDir: *data, DSN: *dsn, NoCache: !*cache,
		AdminKey:     os.Getenv("STREAMGATE_ADMIN_KEY"),
		JWTSecret:    os.Getenv("STREAMGATE_JWT_SECRET"),
		ServiceKey:   os.Getenv("STREAMGATE_SERVICE_KEY"),
		ServiceAddrs: serviceAddrs,
		Out:          stdout,
		Logger:       slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

func tokenCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	roles := fs.String("roles", "user", "comma-separated roles")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret := os.Getenv("STREAMGATE_JWT_SECRET")
	if fs.NArg() != 1 || secret == "" {
		return errors.New("token: want SUBJECT, with STREAMGATE_JWT_SECRET set")
	}
	claims := jwt.MapClaims{"iss": "streamgate", "sub": fs.Arg(0), "exp": time.Now().Add(*ttl).Unix(), "iat": time.Now().Unix()}
	if *roles != "" {
		claims["roles"] = strings.Split(*roles, ",")
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func gatewayCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	cfg := fs.String("config", "", "the gateway's YAML configuration (required)")
	httpAddr := fs.String("http", "127.0.0.1:8080", "REST listen address")
	grpcAddr := fs.String("grpc", "127.0.0.1:9090", "gRPC (GatewayService) listen address")
	adminAddr := fs.String("admin", "", "admin listen address (/healthz, /readyz); off when empty")
	shutdown := fs.Duration("shutdown-timeout", 15*time.Second, "how long requests in flight may run after SIGTERM")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfg == "" {
		return errors.New("gateway: -config is required")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloads := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reloads <- struct{}{}:
				default:
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return gateway.Run(ctx, gateway.RunOptions{
		ConfigPath:      *cfg,
		HTTPAddr:        *httpAddr,
		GRPCAddr:        *grpcAddr,
		AdminAddr:       *adminAddr,
		ShutdownTimeout: *shutdown,
		Reloads:         reloads,
		Logger:          log,
	})
}

func serviceCmd(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("service: name the service first")
	}
	name := args[0]
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9000", "TCP address to serve on")
	version := fs.String("version", "dev", "build version reported by Describe")
	store := fs.String("store", run.StoreSQLite, "where users, inventory, orders and payments keep data: sqlite, memory or postgres")
	data := fs.String("data", "./data", "directory of the SQLite files")
	dsn := fs.String("dsn", "", "PostgreSQL URL for -store postgres")
	inventory := fs.String("inventory", "127.0.0.1:9102", "orders: the inventory service's target (prices)")
	gateways := fs.String("gateways", "", "payments: provider base URLs, e.g. A=http://127.0.0.1:7001,B=http://…")
	providerTimeout := fs.Duration("provider-timeout", 3*time.Second, "payments: how long to wait for a provider")
	settleInterval := fs.Duration("settle-interval", time.Minute, "payments: how often to settle payments whose outcome is unknown (negative: never)")
	settleOlderThan := fs.Duration("settle-older-than", 2*time.Minute, "payments: how old a pending payment must be before it is settled")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	gw := map[string]string{}
	for _, kv := range strings.Split(*gateways, ",") {
		if name, url, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			gw[name] = url
		} else if kv != "" {
			return fmt.Errorf("service: -gateways: %q is not NAME=URL", kv)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	key := os.Getenv("STREAMGATE_SERVICE_KEY")
	if key == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		key = hex.EncodeToString(b[:])
		log.Info("STREAMGATE_SERVICE_KEY is unset; generated a key", "key", key)
	}
	return run.Run(ctx, run.Options{
		Service:         name,
		Listen:          *listen,
		Version:         *version,
		Keys:            []socket.Key{{Name: "cli", Secret: key, Delegate: true, Roles: []string{"admin"}}},
		CallKey:         key,
		Store:           *store,
		DataDir:         *data,
		DSN:             *dsn,
		Inventory:       *inventory,
		Gateways:        gw,
		ProviderTimeout: *providerTimeout,
		SettleInterval:  *settleInterval,
		SettleOlderThan: *settleOlderThan,
		Logger:          log,
		Ready: func(addr string) {
			log.Info("serving", "service", name, "addr", addr)
		},
	})
}
