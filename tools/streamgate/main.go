// Command streamgate runs streamgate's parts and talks to them.
//
//	streamgate stack [-http ADDR] [-grpc ADDR] [-admin ADDR] [-data DIR] [-store KIND] [-dsn URL] [-cache=false] [-nats embedded|URL] [-gateways N -redis URL]
//	                                            the whole example system in one process
//	streamgate gateway -config FILE [-http ADDR] [-grpc ADDR] [-tls-cert FILE -tls-key FILE] [-service-tls-ca FILE]
//	                                            serve the gateway (SIGHUP reloads the config)
//	streamgate service NAME [-listen ADDR] [-nats URL [-nats-events=false]] [-admin ADDR] [-tls-cert FILE -tls-key FILE] [-tls-client-ca FILE]
//	                                            serve one service (key from STREAMGATE_SERVICE_KEY)
//	streamgate call [-addr ADDR | -gateway ADDR|URL] [-key KEY] SERVICE ACTION [ID] [JSON]
//	                                            send one request to a service or through the gateway (gRPC or REST)
//	streamgate call [-addr ADDR] [-key KEY] -watch TOPIC
//	                                            print a service's events as JSON lines
//	streamgate call -gateway URL -version V -watch TOPIC
//	                                            print a topic's events over the gateway's WebSocket
//	streamgate reconcile [-orders ADDR] [-payments ADDR] [-inventory ADDR] [-key KEY] [-dry-run] [-json]
//	                                            settle money and stock the shop's services disagree about
//	streamgate conformance -addr HOST:PORT -key KEY [-json] [-run REGEXP]
//	                                            check a service runtime against docs/protocol.md
//	streamgate help [COMMAND]                   the usage (also -h, --help), or one command's (also COMMAND -h)
//	streamgate load [-c N] [-duration D] [-rate R/s] [-ids FROM-TO] [-H 'Name: value'] URL
//	                                            load a route on loopback and print req/s and latency
//	streamgate bench compare [-rounds N] [-c N] [-duration D] [-markdown FILE] [-svg FILE]
//	                                            compare streamgate with a direct handler and its peers
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/tools/streamgate/internal/cliflag"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// stores are the -store values of stack and service.
func stores() []string { return []string{run.StoreSQLite, run.StoreMemory, run.StorePostgres} }

// stackCmd declares the stack command's flags.
func stackCmd(fs *flag.FlagSet) runner {
	httpAddr := cliflag.Listen(fs, "http", "127.0.0.1:8080", "REST listen address")
	grpcAddr := cliflag.Listen(fs, "grpc", "127.0.0.1:9090", "gateway gRPC listen address")
	adminAddr := cliflag.Listen(fs, "admin", "127.0.0.1:8081", "admin listen address (/healthz, /readyz, /metrics of the gateway and every service)")
	cfg := fs.String("config", "", "the gateway configuration (default gateway/stack.yaml if present, else the copy built in)")
	data := fs.String("data", "./data", "directory of the SQLite files (-store sqlite)")
	store := cliflag.Enum(fs, "store", run.StoreSQLite, stores(), "where the services keep data: sqlite, memory or postgres")
	dsn := fs.String("dsn", "", "PostgreSQL URL for -store postgres")
	cache := fs.Bool("cache", true, "cache and coalesce reads (false: every read reaches its service, for benchmarks)")
	fixedPorts := fs.Bool("service-ports", true, "serve users, inventory, orders and payments on 127.0.0.1:9101–9104 (false: free ports)")
	pprof := fs.Bool("pprof", false, "serve /debug/pprof/ on the admin listener")
	services := fs.String("services", "", "services in another language, as child processes: users=python,inventory=node (the others in go; needs -store memory or postgres)")
	natsFlag := fs.String("nats", "", "serve the services over NATS too and call them over it: embedded (a NATS server with JetStream in the process, on a free loopback port) or a nats:// or tls:// URL")
	gateways := fs.Int("gateways", 1, "how many gateways (gateway k listens on each port plus 100·k; more than one needs -redis)")
	redis := fs.String("redis", "", "redis:// URL of the gateways' shared cache generations and Idempotency-Key state")
	logs := addLogFlags(fs)
	tf := addTLSFlags(fs, false)
	return func(ctx context.Context, in *invocation) error {
		return runStack(ctx, in, stackFlags{*httpAddr, *grpcAddr, *adminAddr, *cfg, *data, *store, *dsn, *cache, *fixedPorts, *pprof, *services, *natsFlag, *redis, *gateways, logs, tf})
	}
}

// stackFlags are the stack command's flags, parsed.
type stackFlags struct {
	httpAddr, grpcAddr, adminAddr, cfg, data, store, dsn string
	cache, fixedPorts, pprof                             bool
	services, nats, redis                                string
	gateways                                             int
	logs                                                 *logFlags
	tf                                                   *tlsFlags
}

// runStack runs the stack as its flags say.
func runStack(ctx context.Context, in *invocation, f stackFlags) error {
	runtimes, err := stack.ParseRuntimes(f.services)
	if err != nil {
		return &usageError{err}
	}
	listenTLS, err := f.tf.listen()
	if err != nil {
		return fmt.Errorf("-tls-cert, -tls-key, -tls-client-ca: %w", err)
	}
	configPath, configData := stackConfig(f.cfg)
	var serviceAddrs map[string]string
	if f.fixedPorts {
		serviceAddrs = map[string]string{"users": "127.0.0.1:9101", "inventory": "127.0.0.1:9102", "orders": "127.0.0.1:9103", "payments": "127.0.0.1:9104"}
	}
	if f.dsn == "" {
		f.dsn = os.Getenv("STREAMGATE_DSN")
	}
	if f.store == run.StorePostgres && f.dsn == "" {
		return usagef("-store postgres needs -dsn or STREAMGATE_DSN")
	}
	if f.gateways < 1 {
		return usagef("-gateways must be at least 1")
	}
	for name, lang := range runtimes {
		if lang != stack.RuntimeGo && f.store != run.StoreMemory && f.store != run.StorePostgres {
			return usagef("-services %s=%s needs -store memory or -store postgres (the Node and Python services have no SQLite store)", name, lang)
		}
	}
	stopTracing, err := startTracing(ctx, "streamgate-stack", in.stderr)
	if err != nil {
		return err
	}
	defer stopTracing()
	return stack.Run(ctx, stack.Options{
		ConfigPath: configPath, ConfigData: configData, ListenTLS: listenTLS, InsecurePlaintext: *f.tf.insecure,
		HTTPAddr: f.httpAddr, GRPCAddr: f.grpcAddr, AdminAddr: f.adminAddr, Pprof: f.pprof,
		Store: f.store, DataDir: f.data, DSN: f.dsn, NoCache: !f.cache,
		AdminKey:     os.Getenv("STREAMGATE_ADMIN_KEY"),
		JWTSecret:    os.Getenv("STREAMGATE_JWT_SECRET"),
		ServiceKey:   os.Getenv("STREAMGATE_SERVICE_KEY"),
		ServiceAddrs: serviceAddrs,
		Runtimes:     runtimes,
		NATS:         f.nats,
		Gateways:     f.gateways,
		Redis:        f.redis,
		Out:          in.stdout,
		Logger:       f.logs.logger(in.stderr),
	})
}

// tokenCmd declares the token command's flags.
func tokenCmd(fs *flag.FlagSet) runner {
	roles := fs.String("roles", "user", "comma-separated roles")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	return func(_ context.Context, in *invocation) error {
		secret := os.Getenv("STREAMGATE_JWT_SECRET")
		if secret == "" {
			return usagef("want SUBJECT, with STREAMGATE_JWT_SECRET set")
		}
		claims := jwt.MapClaims{"iss": "streamgate", "sub": in.args[0], "exp": time.Now().Add(*ttl).Unix(), "iat": time.Now().Unix()}
		if *roles != "" {
			claims["roles"] = strings.Split(*roles, ",")
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(in.stdout, tok)
		return err
	}
}

// gatewayCmd declares the gateway command's flags.
func gatewayCmd(fs *flag.FlagSet) runner {
	cfg := fs.String("config", "", "the gateway's YAML configuration (required)")
	httpAddr := cliflag.Listen(fs, "http", "127.0.0.1:8080", "REST listen address")
	grpcAddr := cliflag.Listen(fs, "grpc", "127.0.0.1:9090", "gRPC (GatewayService) listen address")
	adminAddr := cliflag.Listen(fs, "admin", "", "admin listen address (/healthz, /readyz, /metrics); off when empty")
	shutdown := fs.Duration("shutdown-timeout", 15*time.Second, "how long requests in flight may run after SIGTERM")
	pprof := fs.Bool("pprof", false, "serve /debug/pprof/ on the admin listener (needs -admin)")
	demo := fs.Bool("demo", false, "serve the live demo page at /demo/ (made for the shop's configuration)")
	logs := addLogFlags(fs)
	tf := addTLSFlags(fs, true)
	return func(ctx context.Context, in *invocation) error {
		if *cfg == "" {
			return usagef("-config is required")
		}
		if *pprof && *adminAddr == "" {
			return usagef("-pprof needs -admin")
		}
		return runGateway(ctx, in, gateway.RunOptions{
			ConfigPath:      *cfg,
			HTTPAddr:        *httpAddr,
			GRPCAddr:        *grpcAddr,
			AdminAddr:       *adminAddr,
			Pprof:           *pprof,
			Demo:            *demo,
			ShutdownTimeout: *shutdown,
			Logger:          logs.logger(in.stderr),
			// InsecurePlaintext here, TLS from the files in runGateway.
			InsecurePlaintext: *tf.insecure,
		}, tf)
	}
}

// runGateway serves the gateway with o, its TLS from tf, and reloads on
// SIGHUP.
func runGateway(ctx context.Context, in *invocation, o gateway.RunOptions, tf *tlsFlags) error {
	var err error
	if o.ListenTLS, err = tf.listen(); err != nil {
		return fmt.Errorf("-tls-cert, -tls-key, -tls-client-ca: %w", err)
	}
	if o.ServiceTLS, err = tf.links(); err != nil {
		return fmt.Errorf("-service-tls-*: %w", err)
	}
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
	stopTracing, err := startTracing(ctx, "streamgate-gateway", in.stderr)
	if err != nil {
		return err
	}
	defer stopTracing()
	o.Reloads = reloads
	return gateway.Run(ctx, o)
}

// serviceCmd declares the service command's flags.
func serviceCmd(fs *flag.FlagSet) runner {
	f := &serviceFlags{gateways: map[string]string{}}
	f.listen = cliflag.Listen(fs, "listen", "127.0.0.1:9000", "TCP address to serve on (empty with -nats: NATS alone)")
	fs.StringVar(&f.nats, "nats", "", "also serve over NATS at this URL, e.g. nats://127.0.0.1:4222 (the service's micro service; docs/writing-services.md)")
	fs.BoolVar(&f.natsEvents, "nats-events", true, "with -nats: also store every event in JetStream, for the gateway's event history (false: events go to subscribed streams only)")
	fs.StringVar(&f.version, "version", "dev", "build version reported by Describe")
	f.store = cliflag.Enum(fs, "store", run.StoreSQLite, stores(), "where users, inventory, orders and payments keep data: sqlite, memory or postgres")
	fs.StringVar(&f.data, "data", "./data", "directory of the SQLite files")
	fs.StringVar(&f.dsn, "dsn", "", "PostgreSQL URL for -store postgres")
	fs.StringVar(&f.inventory, "inventory", "127.0.0.1:9102", "orders: the inventory service's target (prices)")
	fs.Func("gateways", "payments: provider base URLs, e.g. A=http://127.0.0.1:7001,B=http://…", f.addGateways)
	fs.DurationVar(&f.providerTimeout, "provider-timeout", 3*time.Second, "payments: how long to wait for a provider")
	fs.DurationVar(&f.settleInterval, "settle-interval", time.Minute, "payments: how often to settle payments whose outcome is unknown (negative: never)")
	fs.DurationVar(&f.settleOlderThan, "settle-older-than", 2*time.Minute, "payments: how old a pending payment must be before it is settled")
	fs.StringVar(&f.key, "key", "", "the key callers present (default: STREAMGATE_SERVICE_KEY; conformance: STREAMGATE_CONFORMANCE_KEY)")
	f.logs = addLogFlags(fs)
	f.admin = addServiceAdminFlags(fs)
	f.tf = addTLSFlags(fs, true)
	return func(ctx context.Context, in *invocation) error {
		return serveService(ctx, in, f)
	}
}

// serviceFlags are the service command's flags.
type serviceFlags struct {
	listen, store                                    *string
	version, data, dsn, inventory, key, nats         string
	natsEvents                                       bool
	gateways                                         map[string]string // -gateways, by name
	providerTimeout, settleInterval, settleOlderThan time.Duration
	logs                                             *logFlags
	admin                                            *serviceAdmin
	tf                                               *tlsFlags
}

// addGateways parses a -gateways value, NAME=URL,NAME=URL.
func (f *serviceFlags) addGateways(s string) error {
	for _, kv := range strings.Split(s, ",") {
		if name, url, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			f.gateways[name] = url
		} else if kv != "" {
			return fmt.Errorf("%q is not NAME=URL", kv)
		}
	}
	return nil
}

// serveService serves the service the command names as its flags say.
func serveService(ctx context.Context, in *invocation, f *serviceFlags) error {
	name := in.lead
	switch {
	case name == "":
		return usagef("name the service first")
	case !slices.Contains(run.Names(), name):
		return usagef("unknown service %q; known: %s", name, strings.Join(run.Names(), ", "))
	case f.admin.pprof && f.admin.addr == "":
		return usagef("-pprof needs -admin")
	}
	f.admin.out = in.stdout
	serverTLS, err := f.tf.listen()
	if err != nil {
		return fmt.Errorf("-tls-cert, -tls-key, -tls-client-ca: %w", err)
	}
	callTLS, err := f.tf.links()
	if err != nil {
		return fmt.Errorf("-service-tls-*: %w", err)
	}
	dsn := f.dsn
	if dsn == "" {
		dsn = os.Getenv("STREAMGATE_DSN")
	}
	key := serviceKey(name, f.key, in.stdout)
	stopTracing, err := startTracing(ctx, name, in.stderr)
	if err != nil {
		return err
	}
	defer stopTracing()
	return f.admin.run(ctx, run.Options{
		Service:         name,
		Listen:          *f.listen,
		NATS:            f.nats,
		NoNATSEvents:    !f.natsEvents,
		Version:         f.version,
		Keys:            []keyring.Key{key},
		CallKey:         key.Secret,
		Store:           *f.store,
		DataDir:         f.data,
		DSN:             dsn,
		Inventory:       f.inventory,
		Gateways:        f.gateways,
		ProviderTimeout: f.providerTimeout,
		SettleInterval:  f.settleInterval,
		SettleOlderThan: f.settleOlderThan,
		Logger:          f.logs.logger(in.stderr),
		TLS:             serverTLS, CallTLS: linkConfig(callTLS), InsecurePlaintext: *f.tf.insecure,
	})
}

// serviceKey is the key callers of the service present: -key, else the
// environment's, else a random one, printed on stdout (never in the
// logs: a key is a secret).
func serviceKey(service, flagKey string, stdout io.Writer) keyring.Key {
	k := keyring.Key{Name: "cli", Delegate: true, Roles: []string{"admin"}}
	k.Secret = os.Getenv("STREAMGATE_SERVICE_KEY")
	if service == "conformance" {
		// The fixture of docs/protocol.md §12: one delegating key, no roles.
		k = keyring.Key{Name: "conformance", Delegate: true}
		k.Secret = os.Getenv("STREAMGATE_CONFORMANCE_KEY")
	}
	if flagKey != "" {
		k.Secret = flagKey
	}
	if k.Secret == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		k.Secret = hex.EncodeToString(b[:])
		fmt.Fprintf(stdout, "service key %s   (STREAMGATE_SERVICE_KEY was unset: callers present this key)\n", k.Secret)
	}
	return k
}
