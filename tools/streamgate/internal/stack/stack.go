// Package stack runs the whole example system in one process: the users,
// inventory, orders and payments services, each on its own loopback port
// and reached over its own real socket, three sandbox payment providers,
// and the gateway in front, configured by gateway/stack.yaml; on NATS
// (Options.NATS) and with several gateways sharing Redis if asked.
//
//	err := stack.Run(ctx, stack.Options{ConfigPath: "gateway/stack.yaml", HTTPAddr: "127.0.0.1:8080", …, Out: os.Stdout})
package stack

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

// Options say where the stack listens and what it uses.
type Options struct {
	// ConfigPath is the gateway configuration; its service targets are
	// replaced by the ports the services get.
	ConfigPath string
	// ConfigData, when not nil, is the configuration itself
	// (gateway.StackConfig()); ConfigPath then only names it.
	ConfigData []byte
	// ListenTLS, when set, serves the gateway's REST and gRPC listeners
	// over TLS.
	ListenTLS *tls.Config
	// InsecurePlaintext allows the gateway's listeners in plaintext on
	// addresses other than loopback (the services stay on loopback), and
	// a plaintext NATS URL off loopback.
	InsecurePlaintext bool
	// HTTPAddr, GRPCAddr and AdminAddr are the gateway's REST, gRPC and
	// admin (/healthz, /readyz, and /metrics of the gateway and every
	// service) listeners.
	HTTPAddr, GRPCAddr, AdminAddr string
	// Pprof serves /debug/pprof/ on the admin listener.
	Pprof bool
	// Store is where the services keep data: run.StoreSQLite (under
	// DataDir), run.StoreMemory or run.StorePostgres (at DSN).
	Store, DataDir, DSN string
	// NoCache turns the gateway's cache and all coalescing off.
	NoCache bool
	// AdminKey is the API key with the admin role; random when empty.
	AdminKey string
	// JWTSecret is the HS256 secret of user tokens; random when empty.
	JWTSecret string
	// ServiceKey is the key the services accept (delegating, role admin)
	// and present to each other; random when empty. Tools such as
	// `streamgate reconcile` use it.
	ServiceKey string
	// ServiceAddrs are where the services listen, by name; a service
	// without one gets a free loopback port.
	ServiceAddrs map[string]string
	// Runtimes say which services run in another language than Go, by
	// name ("users": RuntimePython, "inventory": RuntimeNode; see
	// ParseRuntimes): those run as child processes of the stack, with its
	// service key and its store (memory, or PostgreSQL at DSN; SQLite is
	// refused), their stderr in Logger, drained (SIGTERM) at the end. One
	// that exits stops the stack with an error.
	Runtimes map[string]string
	// Root is the checkout whose services/node and services/python the
	// child processes run; default the working directory.
	Root string
	// NATS, when set, puts every Go service on NATS as well as its
	// stream, and the gateways call them over NATS (transport: nats): the
	// value NATSEmbedded starts a NATS server with JetStream in this
	// process (loopback, a free port, its store in a temporary directory
	// removed at exit); otherwise it is the URL of a server to use
	// (nats:// or tls://). Services in other languages have no NATS
	// transport: Run refuses them with NATS set. Two stacks on one NATS
	// server would answer each other's requests: one stack per server.
	NATS string
	// Gateways is how many gateways run in front of the services (default
	// 1); gateway k (from 0) listens on HTTPAddr, GRPCAddr and AdminAddr
	// with their ports plus 100·k (port 0 stays a free port). More than
	// one needs Redis, where they share Idempotency-Key state and cache
	// invalidations.
	Gateways int
	// Redis, when set, is the redis:// URL the gateways keep cache
	// generations and Idempotency-Key state in (the configuration's
	// redis).
	Redis string
	// Out receives the addresses, credentials and then the line "ready".
	Out io.Writer
	// Logger receives the parts' logs; nil discards them.
	Logger *slog.Logger
}

// sandboxes are the payment providers' sandboxes and their latencies.
func sandboxes() map[string]time.Duration {
	return map[string]time.Duration{"A": 20 * time.Millisecond, "B": 40 * time.Millisecond, "C": 60 * time.Millisecond}
}

// providerTimeout is how long payments waits for a provider: a card that
// makes the sandbox hang times out after it (504, no charge recorded).
const providerTimeout = 2 * time.Second

// Run starts the NATS server (Options.NATS), the sandboxes, the services
// and the gateways, prints where they are, and serves until ctx ends;
// then it drains the gateways, then the services, then stops the NATS
// server it embeds.
func Run(ctx context.Context, o Options) (err error) {
	o = o.withDefaults()
	childStoreArg, err := checkRuntimes(o)
	if err != nil {
		return err
	}
	if err := o.checkShared(); err != nil {
		return err
	}
	sh := shared{redisURL: o.Redis}
	var ns *natsServer
	if o.NATS != "" {
		if ns, err = startNATS(o.NATS, o.InsecurePlaintext); err != nil {
			return err
		}
		defer ns.stop() // after the services, which drain into it
		sh.natsURL = ns.url
	}
	if o.ConfigPath, o.ConfigData, err = gatewayConfig(o, sh); err != nil {
		return err
	}
	gateways, closeSandboxes, err := startSandboxes()
	defer closeSandboxes()
	if err != nil {
		return err
	}
	// A child that exits ends the stack: the gateway drains, Run says why.
	gwCtx, stopGateway := context.WithCancelCause(ctx)
	svcs := newServices(o, childStoreArg, stopGateway, ns)
	defer func() {
		if stopErr := svcs.stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	defer stopGateway(nil)
	if err := svcs.startAll(gateways); err != nil {
		return err
	}
	err = o.runGateways(gwCtx, svcs, gateways)
	if cause := context.Cause(gwCtx); err == nil && ctx.Err() == nil && cause != nil {
		err = cause // a child exited
	}
	return err
}

// withDefaults fills in the options Run does not require: the keys and
// secret are random when empty.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ServiceKey == "" {
		o.ServiceKey = randomKey()
	}
	if o.AdminKey == "" {
		o.AdminKey = randomKey()
	}
	if o.JWTSecret == "" {
		o.JWTSecret = randomKey()
	}
	if o.Root == "" {
		o.Root = "."
	}
	o.Gateways = max(o.Gateways, 1)
	return o
}

// checkRuntimes checks that each service of o.Runtimes exists in its
// language, and returns the store argument of the child processes ("" if
// every service is in Go).
func checkRuntimes(o Options) (string, error) {
	childStoreArg := ""
	for name, lang := range o.Runtimes {
		if _, ok := polyglot[name+"="+lang]; !ok && lang != RuntimeGo {
			return "", fmt.Errorf("there is no %s service in %s", name, lang)
		}
		if lang != RuntimeGo {
			var err error
			if childStoreArg, err = childStore(o); err != nil {
				return "", err
			}
		}
	}
	return childStoreArg, nil
}

// checkShared checks the options of a stack on NATS or with several
// gateways.
func (o Options) checkShared() error {
	if o.NATS != "" {
		for name, lang := range o.Runtimes {
			if lang != RuntimeGo {
				return fmt.Errorf("-nats: the %s service in %s has no NATS transport yet: run it in go, or the stack without -nats", name, lang)
			}
		}
	}
	if o.Gateways > 1 && o.Redis == "" {
		return fmt.Errorf("-gateways %d needs -redis URL: the gateways share Idempotency-Key state and cache invalidations there", o.Gateways)
	}
	if o.Gateways > maxGateways {
		return fmt.Errorf("-gateways %d: at most %d", o.Gateways, maxGateways)
	}
	return nil
}

// startSandboxes starts the payment providers' sandboxes and returns
// their URLs by name, and a func that closes those started (also on an
// error).
func startSandboxes() (map[string]string, func(), error) {
	urls := map[string]string{}
	var started []*payments.Sandbox
	closeAll := func() {
		for _, sb := range slices.Backward(started) {
			sb.Close()
		}
	}
	for name, latency := range sandboxes() {
		sb := payments.NewSandbox(name, latency)
		url, err := sb.Start()
		if err != nil {
			return nil, closeAll, err
		}
		started = append(started, sb)
		urls[name] = url
	}
	return urls, closeAll, nil
}

// services are the stack's services: the Go ones run in this process,
// the others as child processes.
type services struct {
	o             Options
	childStoreArg string
	stopGateway   context.CancelCauseFunc // a child that exits ends the stack
	// One registry for the gateway and every service: the admin listener's
	// /metrics shows them all, the services' series labelled service=NAME.
	metrics *prometheus.Registry

	// The services outlive the gateway, so it can drain into them.
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the Go services
	children []*child       // the services in Node or Python

	targets  map[string]string // where each service listens
	runtimes map[string]string // the language of each service not in Go
	nats     *natsServer       // the server the Go services serve on too; nil: none
}

// newServices prepares the stack's services; startAll starts them.
func newServices(o Options, childStoreArg string, stopGateway context.CancelCauseFunc, ns *natsServer) *services {
	s := &services{
		o: o, childStoreArg: childStoreArg, stopGateway: stopGateway, metrics: gateway.NewRegistry(),
		targets: map[string]string{}, runtimes: map[string]string{}, nats: ns,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// startAll starts the services, each once those it calls serve.
func (s *services) startAll(gateways map[string]string) error {
	// inventory first: orders asks it for prices.
	for _, name := range []string{"users", "inventory"} {
		if err := s.start(name, run.Options{}); err != nil {
			return err
		}
	}
	if err := s.start("orders", run.Options{Inventory: s.targets["inventory"]}); err != nil {
		return err
	}
	return s.start("payments", run.Options{Gateways: gateways, ProviderTimeout: providerTimeout})
}

// start starts one service, in its runtime, and waits until it serves.
func (s *services) start(name string, ro run.Options) error {
	if lang := s.o.Runtimes[name]; lang != "" && lang != RuntimeGo {
		return s.startChild(name, lang)
	}
	return s.startGo(name, ro)
}

// startChild starts a service in another language as a child process;
// its exit stops the gateway.
func (s *services) startChild(name, lang string) error {
	addr := s.o.ServiceAddrs[name]
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	c, a, err := startChild(name, lang, addr, s.o.ServiceKey, s.childStoreArg, s.o)
	if err != nil {
		return err
	}
	s.children = append(s.children, c)
	s.targets[name], s.runtimes[name] = a, lang
	go func() {
		select {
		case <-c.done:
			s.stopGateway(c.exitError())
		case <-s.ctx.Done():
		}
	}()
	return nil
}

// startGo runs a Go service in this process, with ro's service-specific
// options.
func (s *services) startGo(name string, ro run.Options) error {
	ready := make(chan string, 1)
	failed := make(chan error, 1)
	ro.Service, ro.Listen, ro.Version = name, "127.0.0.1:0", "stack"
	if addr := s.o.ServiceAddrs[name]; addr != "" {
		ro.Listen = addr
	}
	// The gateway's key may act for its users (Delegate) and, as itself,
	// is admin: it runs compensations such as refunds.
	ro.Keys = []keyring.Key{{Name: "gateway", Secret: s.o.ServiceKey, Delegate: true, Roles: []string{"admin"}}}
	ro.CallKey = s.o.ServiceKey
	ro.Store, ro.DataDir, ro.DSN = s.o.Store, s.o.DataDir, s.o.DSN
	ro.NoCoalescing = s.o.NoCache
	ro.Metrics = s.metrics
	ro.Logger = s.o.Logger // run names the service on every line
	if s.nats != nil {
		// Its stream stays too: orders calls inventory over it.
		ro.NATS = s.nats.url
		// As the stack allowed the URL (its stream stays on loopback).
		ro.InsecurePlaintext = s.o.InsecurePlaintext
	}
	ro.Ready = func(addr string) { ready <- addr }
	s.wg.Go(func() {
		if err := run.Run(s.ctx, ro); err != nil {
			failed <- err
		}
	})
	select {
	case addr := <-ready:
		s.targets[name] = addr
		return nil
	case err := <-failed:
		return named(name, err)
	}
}

// gatewayTargets are the service targets the gateways use: the ports the
// services got, or none on NATS (where a service's target is its name,
// which the configuration then leaves as it is).
func (s *services) gatewayTargets() map[string]string {
	if s.nats != nil {
		return nil
	}
	return s.targets
}

// stop stops the services: the Go ones first (orders calls inventory to
// the end), then the child processes.
func (s *services) stop() error {
	s.cancel()
	s.wg.Wait()
	return stopChildren(s.children)
}

// printBanner tells a person where everything is and how to get in: each
// gateway's addresses (the first's on the lines tools read), the services,
// the NATS server, the sandboxes and the credentials.
func printBanner(o Options, gws []gateway.Addrs, svcs *services, sandboxes map[string]string) {
	w := o.Out
	if w == nil {
		w = io.Discard
	}
	scheme := "http"
	if o.ListenTLS != nil {
		scheme = "https"
	}
	a := gws[0]
	fmt.Fprintf(w, "REST      %s://%s   (try %s://%s/v1/items: items need no key)\n", scheme, a.HTTP, scheme, a.HTTP)
	fmt.Fprintf(w, "demo      %s://%s/demo/   (the live demo page: sign in with the user JWT below)\n", scheme, a.HTTP)
	fmt.Fprintf(w, "gRPC      %s   (streamgate.gateway.v1.GatewayService, reflection on)\n", a.GRPC)
	fmt.Fprintf(w, "admin     http://%s   (/healthz, /readyz, /metrics of the gateway and every service)\n", a.Admin)
	for k, a := range gws[1:] {
		fmt.Fprintf(w, "REST      %s://%s   (gateway %d of %d: the same services, NATS and Redis)\n", scheme, a.HTTP, k+2, len(gws))
		fmt.Fprintf(w, "gRPC      %s   (gateway %d)\n", a.GRPC, k+2)
		fmt.Fprintf(w, "admin     http://%s   (gateway %d)\n", a.Admin, k+2)
	}
	for _, name := range shopServices {
		if lang := svcs.runtimes[name]; lang != "" {
			fmt.Fprintf(w, "service   %-9s %s   (%s)\n", name, svcs.targets[name], lang)
			continue
		}
		if svcs.nats != nil {
			fmt.Fprintf(w, "service   %-9s %s   (the gateways call it over NATS)\n", name, svcs.targets[name])
			continue
		}
		fmt.Fprintf(w, "service   %-9s %s\n", name, svcs.targets[name])
	}
	if svcs.nats != nil {
		fmt.Fprintf(w, "NATS      %s\n", svcs.nats.describe())
	}
	if o.Redis != "" {
		fmt.Fprintf(w, "Redis     %s   (the gateways' cache generations and Idempotency-Key state)\n", redacted(o.Redis))
	}
	for _, name := range []string{"A", "B", "C"} {
		fmt.Fprintf(w, "sandbox   gateway %s %s\n", name, sandboxes[name])
	}
	fmt.Fprintf(w, "admin key %s   (Authorization: Bearer KEY, role admin)\n", o.AdminKey)
	fmt.Fprintf(w, "service key %s   (STREAMGATE_SERVICE_KEY: the services' own key, e.g. for streamgate reconcile)\n", o.ServiceKey)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "streamgate", "sub": "alice", "roles": []string{"user"}, "exp": time.Now().Add(24 * time.Hour).Unix(),
	}).SignedString([]byte(o.JWTSecret))
	if err == nil {
		fmt.Fprintf(w, "user JWT  %s   (sub alice, 24h)\n", tok)
	}
	fmt.Fprintf(w, "JWT secret %s   (STREAMGATE_JWT_SECRET=%s streamgate token SUBJECT mints a user's token)\n", o.JWTSecret, o.JWTSecret)
	fmt.Fprintln(w, "ready")
}

func randomKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// named prefixes a service's error with "service NAME: " unless run.Run
// did already (it names the service on some errors, not on a listen
// error): one prefix, never two.
func named(service string, err error) error {
	prefix := "service " + service + ": "
	if strings.HasPrefix(err.Error(), prefix) {
		return err
	}
	return fmt.Errorf("%s%w", prefix, err)
}
