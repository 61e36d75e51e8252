// Command streamgate runs streamgate's parts and talks to them.
//
//	streamgate stack [-http ADDR] [-grpc ADDR] [-admin ADDR] [-data DIR] [-store KIND] [-dsn URL] [-cache=false]
//	                                            the whole example system in one process
//	streamgate gateway -config FILE [-http ADDR] [-grpc ADDR] [-tls-cert FILE -tls-key FILE] [-service-tls-ca FILE]
//	                                            serve the gateway (SIGHUP reloads the config)
//	streamgate service NAME [-listen ADDR] [-admin ADDR] [-tls-cert FILE -tls-key FILE] [-tls-client-ca FILE]
//	                                            serve one service (key from STREAMGATE_SERVICE_KEY)
//	streamgate call [-addr ADDR | -gateway ADDR] [-key KEY] SERVICE ACTION [ID] [JSON]
//	                                            send one request to a service or through the gateway
//	streamgate call [-addr ADDR] [-key KEY] -watch TOPIC
//	                                            print a service's events as JSON lines
//	streamgate call -gateway URL -version V -watch TOPIC
//	                                            print a topic's events over the gateway's WebSocket
//	streamgate reconcile [-orders ADDR] [-payments ADDR] [-inventory ADDR] [-key KEY] [-dry-run] [-json]
//	                                            settle money and stock the shop's services disagree about
//	streamgate conformance -addr HOST:PORT -key KEY [-json] [-run REGEXP]
//	                                            check a service runtime against docs/protocol.md
//	streamgate help [COMMAND]                   the usage (also -h, --help), or one command's
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
	"os"
	"os/signal"
	"slices"
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
                   [-services users=python,inventory=node] [-pprof] [-log-format text|json] [-log-level debug|info|warn|error]
      Start the users, inventory, orders and payments services (on 127.0.0.1:9101–9104,
      or free ports with -service-ports=false), sandbox payment providers A, B, C and
      the gateway in one process, print the addresses and credentials (the JWT secret
      too, for streamgate token), then "ready".
      Env: STREAMGATE_ADMIN_KEY, STREAMGATE_JWT_SECRET, STREAMGATE_SERVICE_KEY
      (random when unset), STREAMGATE_DSN (for -dsn). Ctrl-C drains and exits 0.
      -config defaults to gateway/stack.yaml when present, else the copy built in.
      -services runs services in another language as child processes of the stack
      (users=python: services/python/shop/users.py with /usr/bin/python3;
      inventory=node: services/node/shop/inventory.js with node; the others in go),
      from the working directory's checkout, with -store memory or postgres (not
      sqlite); their logs join the stack's (service=NAME); one that exits stops the stack.
      TLS of the gateway's listeners: [-tls-cert FILE -tls-key FILE] [-tls-client-ca FILE]
      [-insecure-plaintext] (as for gateway below).
  streamgate token [-roles a,b] [-ttl D] SUBJECT
      Print an HS256 user JWT (issuer streamgate) signed with STREAMGATE_JWT_SECRET.
  streamgate gateway -config FILE [-http ADDR] [-grpc ADDR] [-admin ADDR] [-shutdown-timeout D]
                     [-pprof] [-log-format text|json] [-log-level debug|info|warn|error]
                          [-tls-cert FILE -tls-key FILE] [-tls-client-ca FILE]
                          [-service-tls-ca FILE] [-service-tls-cert FILE -service-tls-key FILE]
                          [-service-tls-server-name NAME] [-insecure-plaintext]
      Serve the REST edge and GatewayService (gRPC, with health and reflection);
      -admin serves /healthz, /readyz (503 while draining), the Prometheus
      metrics at /metrics and, with -pprof, /debug/pprof/. One access-log line
      per request at -log-level info.
      SIGHUP re-reads the config; SIGTERM/Ctrl-C drains and exits.
      -tls-cert/-tls-key serve REST and gRPC over TLS (-tls-client-ca: require client
      certificates); -service-tls-* reach the services the config gives no TLS over
      TLS (mutual with -service-tls-cert). Plaintext on an address other than loopback
      is refused unless -insecure-plaintext (or plaintext: true in the config).
  streamgate service NAME [-listen ADDR] [-admin ADDR] [-pprof] [-store sqlite|memory|postgres] [-data DIR] [-dsn URL]
                          [-inventory ADDR] [-gateways A=URL,B=URL,C=URL] [-provider-timeout D] [-version V]
                          [-settle-interval D] [-settle-older-than D]
                          [-log-format text|json] [-log-level debug|info|warn|error]
                          [-tls-cert FILE -tls-key FILE] [-tls-client-ca FILE] [-service-tls-ca FILE]
                          [-service-tls-cert FILE -service-tls-key FILE] [-service-tls-server-name NAME]
                          [-insecure-plaintext] [-key KEY]
      Serve one service; -admin serves /healthz, /readyz, /metrics (and
      /debug/pprof/ with -pprof). Callers (and the services it calls) use the key in
      -key or STREAMGATE_SERVICE_KEY (a random one is printed when unset; for the
      conformance fixture of docs/protocol.md: STREAMGATE_CONFORMANCE_KEY); STREAMGATE_DSN
      is the PostgreSQL URL when -dsn is not given. -tls-* serve the socket over
      TLS (-tls-client-ca: mutual TLS); -service-tls-* reach the services it calls
      (orders: inventory) over TLS. Plaintext off loopback needs -insecure-plaintext.
      Services: %s
  streamgate call [-addr ADDR | -gateway ADDR] [-key KEY] [-version V] [-principal SUB] [-timeout D] SERVICE ACTION [ID] [JSON]
      Send one request and print the response envelope: straight to a service's
      socket (-addr, key from STREAMGATE_SERVICE_KEY), or through the gateway's
      gRPC API (-gateway, key: an API key or JWT, default STREAMGATE_ADMIN_KEY),
      which finds the version's route for SERVICE ACTION. Exit status 1 when ok is false.
  streamgate call [-addr ADDR] [-key KEY] [-timeout D] -watch TOPIC
      Subscribe to TOPIC (orders/ord_1, or a pattern: items/*, *) on every instance
      of the service at -addr and print one JSON line per event,
      {"type":"event","topic","seq","data","visibility"} ("gap": true when events
      before it may be missing; {"type":"gap"} when a stream broke), until
      interrupted (or -timeout, when given).
  streamgate call -gateway URL -version V [-key KEY] -watch TOPIC
      Print TOPIC's events (e.g. orders/ord_1), one JSON line each, until interrupted,
      over the WebSocket endpoint of the gateway whose REST URL is URL.
  streamgate help [COMMAND]
      Print this usage, or one command's with its flags (also -h, --help).
  streamgate reconcile [-orders ADDR] [-payments ADDR] [-inventory ADDR] [-key KEY] [-dry-run] [-json] [-older-than D] [-timeout D]
      Settle what orders (default 127.0.0.1:9103), payments (127.0.0.1:9104) and
      inventory (127.0.0.1:9102; -inventory "" leaves stock alone) disagree about
      after faults: payments whose gateway never answered, charges without a paid
      order (marked paid or refunded), purchases stuck paying past their lease
      (released), stock reserved by purchases no order is paying or was paid by
      (released_stock). Acts as an admin with the key (default
      STREAMGATE_SERVICE_KEY; it must be able to name a principal). Prints one line
      per settlement and a summary ("nothing to settle"); exit status 1 on error.
  Tracing (stack, gateway, service): spans go over OTLP to OTEL_EXPORTER_OTLP_ENDPOINT
      (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_EXPORTER_OTLP_PROTOCOL grpc or
      http/protobuf; the other standard OTEL_* env vars apply); off when unset.
  streamgate conformance [-addr HOST:PORT] [-key KEY] [-json] [-run REGEXP] [-timeout D]
      Run the socket protocol's conformance kit (docs/protocol.md, streamgate socket
      protocol 1.0) against a fixture service (§12: streamgate service conformance, or
      the Node or Python fixture) at -addr, with its key (default
      STREAMGATE_CONFORMANCE_KEY). One line per case, "PASS|FAIL  §N  name  (why)",
      then a summary; -json prints the report as JSON. Each case is bounded by
      -timeout (default 10s); the last case, drain, ends the service. Exit status 1
      when a case fails.
  streamgate load [-method M] [-ids FROM-TO] [-H 'Name: value']... [-body S | -body-file FILE]
                  [-c N] [-duration D] [-rate R/s] [-requests N] [-timeout D] [-json FILE] [-svg FILE] URL
      Drive a route on loopback (each {id} in URL and body is the next id of -ids)
      with -c connections (default 64) for -duration (default 10s): closed loop,
      or at a fixed -rate (latency counted from when each request was due). Prints
      req/s, p50/p90/p99/p99.9/max and errors by status and transport error, with
      a live progress line on a terminal; -json writes the histogram, -svg a chart.
  streamgate bench compare [-systems LIST] [-rounds N] [-c N] [-duration D] [-warmup D] [-users N]
                           [-server-cpus LIST] [-markdown FILE] [-svg FILE]
      Start each system in turn as its own processes on loopback (direct handler,
      grpc-gateway → unary gRPC, httputil.ReverseProxy → HTTP/JSON, streamgate with
      cache and coalescing off, streamgate with cache on), check every answer, load
      each alike for -rounds rounds (default 2) and print req/s, p50, p99, CPU
      seconds per 10k requests of each process and the ratios to the direct handler.
      -systems node-socket,node-http: one Node handler (services/node) behind the
      streamgate gateway's socket and behind httputil.ReverseProxy (needs node; run
      from the repository's root). -server-cpus pins the servers (taskset -c).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// dispatch runs a subcommand and returns the exit status: 0, 1 when the
// command failed while running (a port in use, a service down), 2 when
// the command line makes no sense.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText())
		return 2
	}
	if isHelp(args[0]) {
		if len(args) > 1 && args[0] == "help" && isCommand(args[1]) {
			// streamgate help CMD: the command's own -h.
			return dispatch(ctx, []string{args[1], "-h"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usageText())
		return 0
	}
	var err error
	switch args[0] {
	case "stack":
		err = stackCmd(ctx, args[1:], stdout, stderr)
	case "gateway":
		err = gatewayCmd(ctx, args[1:], stderr)
	case "service":
		err = serviceCmd(ctx, args[1:], stdout, stderr)
	case "token":
		err = tokenCmd(args[1:], stdout)
	case "call":
		var ok bool
		ok, err = callCmd(ctx, args[1:], stdout)
		if err == nil && !ok {
			return 1
		}
	case "conformance":
		var ok bool
		ok, err = conformanceCmd(ctx, args[1:], stdout)
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
		fmt.Fprintf(stderr, "streamgate: unknown command %q (streamgate help lists the commands)\n", args[0])
		return 2
	}
	var help *helpShown
	var usageErr *usageError
	var runErr *runError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.text)
		return 0
	case errors.As(err, &runErr):
		fmt.Fprintf(stderr, "streamgate: %s: %v\n", args[0], err)
		return 1
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "streamgate: %s: %v (streamgate help %s)\n", args[0], err, args[0])
		return 2
	}
	fmt.Fprintf(stderr, "streamgate: %v (streamgate help %s)\n", err, args[0])
	return 2
}

// isCommand says whether dispatch knows a subcommand.
func isCommand(name string) bool {
	return slices.Contains([]string{"stack", "gateway", "service", "token", "call", "reconcile", "conformance"}, name)
}

func stackCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stack", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:8080", "REST listen address")
	grpcAddr := fs.String("grpc", "127.0.0.1:9090", "gateway gRPC listen address")
	adminAddr := fs.String("admin", "127.0.0.1:8081", "admin listen address (/healthz, /readyz, /metrics of the gateway and every service)")
	cfg := fs.String("config", "", "the gateway configuration (default gateway/stack.yaml if present, else the copy built in)")
	data := fs.String("data", "./data", "directory of the SQLite files (-store sqlite)")
	store := fs.String("store", run.StoreSQLite, "where the services keep data: sqlite, memory or postgres")
	dsn := fs.String("dsn", "", "PostgreSQL URL for -store postgres")
	cache := fs.Bool("cache", true, "cache and coalesce reads (false: every read reaches its service, for benchmarks)")
	fixedPorts := fs.Bool("service-ports", true, "serve users, inventory, orders and payments on 127.0.0.1:9101–9104 (false: free ports)")
	pprof := fs.Bool("pprof", false, "serve /debug/pprof/ on the admin listener")
	services := fs.String("services", "", "services in another language, as child processes: users=python,inventory=node (the others in go; needs -store memory or postgres)")
	logs := addLogFlags(fs)
	tf := addTLSFlags(fs, false)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	runtimes, err := stack.ParseRuntimes(*services)
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	listenTLS, err := tf.listen()
	if err != nil {
		return &runError{fmt.Errorf("-tls-cert, -tls-key, -tls-client-ca: %w", err)}
	}
	configPath, configData := stackConfig(*cfg)
	var serviceAddrs map[string]string
	if *fixedPorts {
		serviceAddrs = map[string]string{"users": "127.0.0.1:9101", "inventory": "127.0.0.1:9102", "orders": "127.0.0.1:9103", "payments": "127.0.0.1:9104"}
	}
	if *dsn == "" {
		*dsn = os.Getenv("STREAMGATE_DSN")
	}
	if *store == run.StorePostgres && *dsn == "" {
		return errors.New("stack: -store postgres needs -dsn or STREAMGATE_DSN")
	}
	for name, lang := range runtimes {
		if lang != stack.RuntimeGo && *store != run.StoreMemory && *store != run.StorePostgres {
			return fmt.Errorf("stack: -services %s=%s needs -store memory or -store postgres (the Node and Python services have no SQLite store)", name, lang)
		}
	}
	stopTracing, err := startTracing(ctx, "streamgate-stack", stderr)
	if err != nil {
		return err
	}
	defer stopTracing()
	return asRunError(stack.Run(ctx, stack.Options{
		ConfigPath: configPath, ConfigData: configData, ListenTLS: listenTLS, InsecurePlaintext: *tf.insecure,
		HTTPAddr: *httpAddr, GRPCAddr: *grpcAddr, AdminAddr: *adminAddr, Pprof: *pprof,
		Store: *store, DataDir: *data, DSN: *dsn, NoCache: !*cache,
		AdminKey:     os.Getenv("STREAMGATE_ADMIN_KEY"),
		JWTSecret:    os.Getenv("STREAMGATE_JWT_SECRET"),
		ServiceKey:   os.Getenv("STREAMGATE_SERVICE_KEY"),
		ServiceAddrs: serviceAddrs,
		Runtimes:     runtimes,
		Out:          stdout,
		Logger:       logs.logger(stderr),
	}))
}

func tokenCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	roles := fs.String("roles", "user", "comma-separated roles")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := parseFlags(fs, args); err != nil {
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
	adminAddr := fs.String("admin", "", "admin listen address (/healthz, /readyz, /metrics); off when empty")
	shutdown := fs.Duration("shutdown-timeout", 15*time.Second, "how long requests in flight may run after SIGTERM")
	pprof := fs.Bool("pprof", false, "serve /debug/pprof/ on the admin listener (needs -admin)")
	demo := fs.Bool("demo", false, "serve the live demo page at /demo/ (made for the shop's configuration)")
	logs := addLogFlags(fs)
	tf := addTLSFlags(fs, true)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfg == "" {
		return errors.New("gateway: -config is required")
	}
	if *pprof && *adminAddr == "" {
		return errors.New("gateway: -pprof needs -admin")
	}
	listenTLS, err := tf.listen()
	if err != nil {
		return &runError{fmt.Errorf("-tls-cert, -tls-key, -tls-client-ca: %w", err)}
	}
	serviceTLS, err := tf.links()
	if err != nil {
		return &runError{fmt.Errorf("-service-tls-*: %w", err)}
	}
	log := logs.logger(stderr)
	ctx, cancel := context.WithCancel(ctx) // ends the SIGHUP loop when Run returns
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloads := make(chan struct{}, 1)
	returned := make(chan struct{}) // closed when the command returns: ends the forwarder
	defer close(returned)
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reloads <- struct{}{}:
				default:
				}
			case <-returned:
				return
			}
		}
	}()
	stopTracing, err := startTracing(ctx, "streamgate-gateway", stderr)
	if err != nil {
		return err
	}
	defer stopTracing()
	return asRunError(gateway.Run(ctx, gateway.RunOptions{
		ConfigPath:      *cfg,
		HTTPAddr:        *httpAddr,
		GRPCAddr:        *grpcAddr,
		AdminAddr:       *adminAddr,
		Pprof:           *pprof,
		Demo:            *demo,
		ShutdownTimeout: *shutdown,
		Reloads:         reloads,
		Logger:          log,

		ListenTLS: listenTLS, ServiceTLS: serviceTLS, InsecurePlaintext: *tf.insecure,
	}))
}

func serviceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name, rest := "", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, rest = args[0], args[1:]
	}
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
	keyFlag := fs.String("key", "", "the key callers present (default: STREAMGATE_SERVICE_KEY; conformance: STREAMGATE_CONFORMANCE_KEY)")
	logs := addLogFlags(fs)
	admin := addServiceAdminFlags(fs)
	tf := addTLSFlags(fs, true)
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	admin.out = stdout
	switch {
	case name == "":
		return errors.New("service: name the service first")
	case !slices.Contains(run.Names(), name):
		return fmt.Errorf("service: unknown service %q; known: %s", name, strings.Join(run.Names(), ", "))
	case admin.pprof && admin.addr == "":
		return errors.New("service: -pprof needs -admin")
	}
	serverTLS, err := tf.listen()
	if err != nil {
		return &runError{fmt.Errorf("-tls-cert, -tls-key, -tls-client-ca: %w", err)}
	}
	callTLS, err := tf.links()
	if err != nil {
		return &runError{fmt.Errorf("-service-tls-*: %w", err)}
	}
	if *dsn == "" {
		*dsn = os.Getenv("STREAMGATE_DSN")
	}
	gw := map[string]string{}
	for _, kv := range strings.Split(*gateways, ",") {
		if name, url, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			gw[name] = url
		} else if kv != "" {
			return fmt.Errorf("service: -gateways: %q is not NAME=URL", kv)
		}
	}
	log := logs.logger(stderr)
	keyEntry := socket.Key{Name: "cli", Delegate: true, Roles: []string{"admin"}}
	key := os.Getenv("STREAMGATE_SERVICE_KEY")
	if name == "conformance" {
		// The fixture of docs/protocol.md §12: one delegating key, no roles.
		keyEntry = socket.Key{Name: "conformance", Delegate: true}
		key = os.Getenv("STREAMGATE_CONFORMANCE_KEY")
	}
	if *keyFlag != "" {
		key = *keyFlag
	}
	if key == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		key = hex.EncodeToString(b[:])
		// On stdout, never in the logs: a key is a secret.
		fmt.Fprintf(stdout, "service key %s   (STREAMGATE_SERVICE_KEY was unset: callers present this key)\n", key)
	}
	stopTracing, err := startTracing(ctx, name, stderr)
	if err != nil {
		return err
	}
	defer stopTracing()
	o := run.Options{
		Service:         name,
		Listen:          *listen,
		Version:         *version,
		Keys:            []socket.Key{withSecret(keyEntry, key)},
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
		TLS:             serverTLS, CallTLS: linkConfig(callTLS), InsecurePlaintext: *tf.insecure,
	}
	return asRunError(admin.run(ctx, o))
}

// withSecret returns k with its secret set.
func withSecret(k socket.Key, secret string) socket.Key {
	k.Secret = secret
	return k
}

// asRunError marks an error of a command that ran (a port in use, a bad
// configuration file): one line on stderr, exit status 1, no usage.
func asRunError(err error) error {
	if err == nil {
		return nil
	}
	return &runError{err}
}
