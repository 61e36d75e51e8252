// Command streamgate runs streamgate's parts and talks to them.
//
//	streamgate stack [-http ADDR] [-grpc ADDR] [-admin ADDR] [-data DIR] [-store KIND] [-dsn URL] [-cache=false]
//	                                            the whole example system in one process
//	streamgate gateway -config FILE [-http ADDR] [-grpc ADDR]
//	                                            serve the gateway (SIGHUP reloads the config)
//	streamgate service NAME [-listen ADDR]      serve one service (key from STREAMGATE_SERVICE_KEY)
//	streamgate call [-addr ADDR] [-key KEY] SERVICE ACTION [ID] [JSON]
//	                                            send one request to a service's socket
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

const usage = `usage:
  streamgate stack [-http ADDR] [-grpc ADDR] [-admin ADDR] [-data DIR] [-store sqlite|memory|postgres] [-dsn URL] [-cache=false] [-config FILE]
      Start the users, inventory, orders and payments services, sandbox payment
      providers A, B, C and the gateway in one process, print the addresses and
      credentials, then "ready". Env: STREAMGATE_ADMIN_KEY, STREAMGATE_JWT_SECRET
      (random when unset). Ctrl-C drains and exits 0.
  streamgate gateway -config FILE [-http ADDR] [-grpc ADDR] [-admin ADDR] [-shutdown-timeout D]
      Serve the REST edge and GatewayService (gRPC, with health and reflection).
      SIGHUP re-reads the config; SIGTERM/Ctrl-C drains and exits.
  streamgate service NAME [-listen ADDR] [-version V]
      Serve one service. Callers authenticate with the key in
      STREAMGATE_SERVICE_KEY (a random one is printed when unset).
      Services: %s
  streamgate call [-addr ADDR] [-key KEY] [-version V] [-principal SUB] [-timeout D] SERVICE ACTION [ID] [JSON]
      Send one request to a service's socket and print the response envelope.
      The key defaults to STREAMGATE_SERVICE_KEY. Exit status 1 when ok is false.
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
	case "call":
		var ok bool
		ok, err = callCmd(ctx, args[1:], stdout)
		if err == nil && !ok {
			return 1
		}
	default:
		err = fmt.Errorf("unknown command %q", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *store == run.StorePostgres && *dsn == "" {
		return errors.New("stack: -store postgres needs -dsn")
	}
	return stack.Run(ctx, stack.Options{
		ConfigPath: *cfg, HTTPAddr: *httpAddr, GRPCAddr: *grpcAddr, AdminAddr: *adminAddr,
		Store: *store, DataDir: *data, DSN: *dsn, NoCache: !*cache,
		AdminKey:  os.Getenv("STREAMGATE_ADMIN_KEY"),
		JWTSecret: os.Getenv("STREAMGATE_JWT_SECRET"),
		Out:       stdout,
		Logger:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
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
	if err := fs.Parse(args[1:]); err != nil {
		return err
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
		Service: name,
		Listen:  *listen,
		Version: *version,
		Keys:    []socket.Key{{Name: "cli", Secret: key, Delegate: true}},
		Logger:  log,
		Ready: func(addr string) {
			log.Info("serving", "service", name, "addr", addr)
		},
	})
}

// callCmd sends one request and prints its envelope; ok reports the
// envelope's ok.
func callCmd(ctx context.Context, args []string, stdout io.Writer) (ok bool, err error) {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "the service's address (any socket.Dial target)")
	key := fs.String("key", os.Getenv("STREAMGATE_SERVICE_KEY"), "the key to present")
	version := fs.String("version", "", "API version to send in the frame's meta")
	principal := fs.String("principal", "", "end user to act for (needs a delegating key)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	rest := fs.Args()
	if len(rest) < 2 || len(rest) > 4 {
		return false, errors.New("call: want SERVICE ACTION [ID] [JSON]")
	}
	action, id, body := rest[1], "", json.RawMessage(nil)
	if len(rest) > 2 {
		id = rest[2]
	}
	if len(rest) > 3 {
		body = json.RawMessage(rest[3])
		if !json.Valid(body) {
			return false, fmt.Errorf("call: the body is not valid JSON: %s", rest[3])
		}
	}
	c, err := socket.Dial(*addr, socket.WithKey(*key))
	if err != nil {
		return false, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	m := socket.Meta{APIVersion: *version}
	if *principal != "" {
		m.Principal.Subject = *principal
	}
	res, err := c.Request(socket.ContextWithMeta(ctx, m), action, id, body)
	env := socket.NewEnvelope(res, err)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return env.OK, enc.Encode(env)
}
