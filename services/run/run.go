// Package run serves one of streamgate's services by name on a listener,
// with its store and the other services it depends on; it is what
// `streamgate service NAME` and the stack call.
//
//	err := run.Run(ctx, run.Options{Service: "users", Listen: "127.0.0.1:9001", Store: run.StoreSQLite, DataDir: "data", Keys: keys})
package run

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/streamgate/streamgate/internal/tlsfiles"
	"github.com/streamgate/streamgate/services/conformance"
	"github.com/streamgate/streamgate/services/echo"
	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/notes"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/socket/natsserve"
	"github.com/streamgate/streamgate/services/users"
)

// The stores a data service can keep its data in.
const (
	StoreSQLite   = "sqlite"   // embedded, a file per service under DataDir (default)
	StoreMemory   = "memory"   // lost on exit; for tests and benchmarks
	StorePostgres = "postgres" // the server at DSN
)

// Names lists the services Run knows.
// providerIdleConns is how many idle connections the payments service keeps
// to each payment gateway.
const providerIdleConns = 64

func Names() []string {
	return []string{"conformance", "echo", "inventory", "notes", "orders", "payments", "users"}
}

// Options say what to serve where.
type Options struct {
	// Service is the service's name, one of Names().
	Service string
	// Listen is the TCP address to serve on, e.g. "127.0.0.1:9000"; ""
	// with NATS set serves over NATS alone.
	Listen string
	// NATS, when set, is the URL of a NATS server to serve over as well
	// (see services/socket/natsserve), e.g. "nats://127.0.0.1:4222".
	// Without TLS in the URL (tls://), a server other than loopback is
	// refused unless InsecurePlaintext. The service then also stores
	// every event it publishes in JetStream there (natsserve.WithEvents),
	// unless NoNATSEvents.
	NATS string
	// NoNATSEvents, with NATS set, sends events to subscribed streams only,
	// not into JetStream.
	NoNATSEvents bool
	// Keys are the keys callers may present. Without keys Run refuses to
	// serve unless WithoutAuth says so.
	Keys []keyring.Key
	// WithoutAuth serves without keys: any caller may act for any
	// principal. For local experiments only; Run refuses it with Keys.
	WithoutAuth bool
	// Version is reported by Describe.
	Version string
	// Store is where users, inventory, orders and payments keep data:
	// StoreSQLite (default), StoreMemory or StorePostgres.
	Store string
	// DataDir holds the SQLite files (DIR/SERVICE.db). Default "data".
	DataDir string
	// DSN is the PostgreSQL URL for StorePostgres.
	DSN string
	// Inventory is the inventory service's target, for orders (prices).
	Inventory string
	// CallKey is the key this service presents to the services it calls.
	CallKey string
	// Gateways are the payment providers' sandbox base URLs by gateway
	// name (A, B, C), for payments.
	Gateways map[string]string
	// ProviderTimeout bounds one call to a payment provider. Default 3s.
	ProviderTimeout time.Duration
	// SettleInterval is how often payments runs a settle pass
	// (payments.SettleEvery) while it serves; default 1 minute, negative
	// for none.
	SettleInterval time.Duration
	// SettleOlderThan is how old a payment must be before a settle pass
	// asks its gateway about it; default 2 minutes.
	SettleOlderThan time.Duration
	// NoCoalescing turns the server's coalescing of identical reads off.
	NoCoalescing bool
	// TLS, when set, serves the socket over TLS (with ClientCAs and
	// RequireAndVerifyClientCert: mutual TLS). Without it, Run refuses to
	// listen on an address other than loopback unless InsecurePlaintext.
	TLS *tls.Config
	// CallTLS, when set, is the TLS of the links to the services this one
	// calls (orders → inventory). Without it, a target other than
	// loopback is refused unless InsecurePlaintext.
	CallTLS *tls.Config
	// InsecurePlaintext allows plaintext off loopback.
	InsecurePlaintext bool
	// Logger receives the runtime's logs; nil discards them.
	Logger *slog.Logger
	// Ready, if set, is called with the bound address once serving.
	Ready func(addr string)
	// AdminAddr, when set, serves GET /metrics (the service's Prometheus
	// metrics, see socket.WithMetrics) on this TCP address.
	AdminAddr string
	// AdminReady, if set, is called with the admin listener's bound
	// address once it serves.
	AdminReady func(addr string)
	// Pprof serves /debug/pprof/ on the admin listener.
	Pprof bool
	// Metrics, when set, receives the service's metrics (labelled with
	// its name) instead of a registry of its own; AdminAddr serves it if
	// it is a prometheus.Gatherer.
	Metrics prometheus.Registerer
}

// Run serves the service until ctx ends, then drains and returns.
func Run(ctx context.Context, o Options) error {
	if !slices.Contains(Names(), o.Service) {
		return fmt.Errorf("unknown service %q; known: %s", o.Service, strings.Join(Names(), ", "))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = o.Logger.With("service", o.Service) // every line of the service, the runtime's too
	// A service may start its own graceful shutdown (the conformance
	// fixture's DRAIN), exactly as cancelling ctx does.
	ctx, shutdown := context.WithCancel(ctx)
	defer shutdown()
	reg := metricsRegistry(o)
	opts, err := serverOptions(o, reg)
	if err != nil {
		return err
	}
	srv, err := socket.NewServer(socket.Config{Name: o.Service, Version: o.Version}, opts...)
	if err != nil {
		return err
	}
	var closers []io.Closer // what register opens
	defer func() { closeAll(closers) }()
	// Background tasks (payments' settle loop) run until Run returns,
	// before what they use is closed.
	tasks := newTasks(ctx)
	defer tasks.stop()
	if err := register(ctx, srv, o, &closers, tasks.start, shutdown); err != nil {
		return fmt.Errorf("service %s: %w", o.Service, err)
	}
	lis, err := listen(o, &closers)
	if err != nil {
		return err
	}
	var serving atomic.Bool // for /readyz: from Ready until the drain starts
	if o.AdminAddr != "" {
		addr, wait, err := serveAdmin(o.AdminAddr, reg, o.Pprof, &serving)
		if err != nil {
			_ = lis.Close()
			return err
		}
		defer wait()
		if o.AdminReady != nil {
			o.AdminReady(addr)
		}
	}
	return serve(ctx, srv, lis, o, &serving)
}

// listen is where the service serves: its TCP listener, NATS beside it
// when o.NATS is set (the connection joins closers), or NATS alone when
// o.Listen is "".
func listen(o Options, closers *[]io.Closer) (net.Listener, error) {
	if o.NATS == "" {
		return net.Listen("tcp", o.Listen)
	}
	u, err := url.Parse(o.NATS)
	if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
		return nil, errors.New(`run: NATS: expected a URL such as "nats://127.0.0.1:4222"`)
	}
	if u.Scheme == "nats" && !o.InsecurePlaintext && !tlsfiles.LoopbackTarget(u.Host) {
		return nil, tlsfiles.PlaintextListenError("service "+o.Service, u.Redacted(), "use a tls:// NATS URL, or allow it with -insecure-plaintext")
	}
	var stream net.Listener
	if o.Listen != "" {
		if stream, err = net.Listen("tcp", o.Listen); err != nil {
			return nil, err
		}
	}
	// The connection retries in the background: the service starts
	// before its NATS server does.
	nc, err := nats.Connect(o.NATS, nats.Name("streamgate service "+o.Service), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		if stream != nil {
			_ = stream.Close()
		}
		return nil, fmt.Errorf("run: NATS at %s: %w", u.Redacted(), err)
	}
	*closers = append(*closers, closerFunc(nc.Close))
	var opts []natsserve.Option
	if !o.NoNATSEvents {
		opts = append(opts, natsserve.WithEvents(""))
	}
	return natsserve.Listen(nc, stream, opts...), nil
}

// closerFunc is a Close with no error as an io.Closer.
type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

// serverOptions are the socket server's options: its logger, metrics,
// TLS, coalescing and keys. A plaintext listener off loopback, and keys
// that do not say who may call, are refused.
func serverOptions(o Options, reg prometheus.Registerer) ([]socket.ServerOption, error) {
	opts := []socket.ServerOption{socket.WithLogger(o.Logger)}
	if reg != nil {
		opts = append(opts, socket.WithMetrics(reg))
	}
	if o.TLS != nil {
		opts = append(opts, socket.WithGRPCServerOptions(grpc.Creds(credentials.NewTLS(o.TLS))))
	} else if !o.InsecurePlaintext && o.Listen != "" && !tlsfiles.LoopbackAddr(o.Listen) {
		return nil, tlsfiles.PlaintextListenError("service "+o.Service, o.Listen, "set -tls-cert and -tls-key, or allow it with -insecure-plaintext")
	}
	if o.NoCoalescing {
		opts = append(opts, socket.WithoutCoalescing())
	}
	auth, err := authOption(o)
	if err != nil {
		return nil, err
	}
	return append(opts, auth), nil
}

// authOption is how the server checks its callers: o.Keys, or no check
// at all when o.WithoutAuth says so.
func authOption(o Options) (socket.ServerOption, error) {
	switch {
	case o.WithoutAuth && len(o.Keys) > 0:
		return nil, errors.New("run: WithoutAuth and Keys are exclusive")
	case o.WithoutAuth:
		return socket.WithoutAuth(), nil
	case len(o.Keys) == 0:
		return nil, errors.New("run: no keys: a service without keys would let any caller act for anyone; set Keys, or WithoutAuth for local experiments")
	}
	keys, err := keyring.New(o.Keys...)
	if err != nil {
		return nil, err
	}
	return socket.WithKeys(keys), nil
}

// closeAll closes what the service opened, the last opened first.
func closeAll(closers []io.Closer) {
	for _, c := range slices.Backward(closers) {
		_ = c.Close()
	}
}

// tasks are the service's background tasks: they run until stop.
type tasks struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newTasks makes the tasks' set; they end with ctx at the latest.
func newTasks(ctx context.Context) *tasks {
	t := &tasks{}
	t.ctx, t.cancel = context.WithCancel(ctx)
	return t
}

// start runs task in the background.
func (t *tasks) start(task func(context.Context)) {
	t.wg.Go(func() { task(t.ctx) })
}

// stop ends the tasks and waits for them.
func (t *tasks) stop() {
	t.cancel()
	t.wg.Wait()
}

// serve serves srv on lis until ctx ends, saying so in the log and to
// o.Ready, and keeping serving true from then until the drain starts.
func serve(ctx context.Context, srv *socket.Server, lis net.Listener, o Options, serving *atomic.Bool) error {
	serving.Store(true) // before the line that says so: readers of the log may ask /readyz at once
	o.Logger.Info("service serving", "addr", lis.Addr().String(), "store", o.storeName())
	if o.Ready != nil {
		o.Ready(lis.Addr().String())
	}
	logged := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(logged)
		serving.Store(false)
		o.Logger.Info("service draining")
	})
	defer func() {
		if !stop() {
			<-logged // Run logs nothing after it returns
		}
	}()
	err := srv.Serve(ctx, lis)
	o.Logger.Info("service drained")
	return err
}

// storeName is the store the service keeps its data in, for the logs
// (never the DSN, which may carry a password).
func (o Options) storeName() string {
	switch {
	case o.Service == "echo" || o.Service == "notes" || o.Service == "conformance":
		return "none"
	case o.Store == "":
		return StoreSQLite
	}
	return o.Store
}

// register adds the service's actions, opening its store and the clients
// it needs; what it opens goes to closers, the tasks it runs in the
// background to start. shutdown starts Run's graceful shutdown.
func register(ctx context.Context, srv *socket.Server, o Options, closers *[]io.Closer, start func(task func(context.Context)), shutdown func()) error {
	switch o.Service {
	case "conformance":
		return conformance.New(shutdown).Register(srv)
	case "echo":
		return echo.Register(srv)
	case "notes":
		return notes.Register(srv, notes.NewStore())
	}
	db, err := openDB(ctx, o)
	if err != nil {
		return err
	}
	if db != nil {
		*closers = append(*closers, db)
	}
	switch o.Service {
	case "users":
		st, err := store(ctx, db, users.NewMemoryStore, users.NewSQLStore)
		if err != nil {
			return err
		}
		return users.Register(srv, st)
	case "inventory":
		st, err := store(ctx, db, inventory.NewMemoryStore, inventory.NewSQLStore)
		if err != nil {
			return err
		}
		return inventory.Register(srv, st)
	case "orders":
		if o.Inventory == "" {
			return errors.New("orders needs the inventory service's address (for prices)")
		}
		c, err := dial(o, "inventory", o.Inventory)
		if err != nil {
			return err
		}
		*closers = append(*closers, c)
		st, err := store(ctx, db, orders.NewMemoryStore, orders.NewSQLStore)
		if err != nil {
			return err
		}
		return orders.Register(srv, st, orders.SocketPricer(c))
	case "payments":
		providers := map[string]payments.Provider{}
		// One client for every provider, keeping as many idle connections
		// as a busy service uses (http.DefaultClient keeps 2 per host and
		// dials a new connection for every other concurrent charge).
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = providerIdleConns
		client := &http.Client{Transport: tr}
		for name, url := range o.Gateways {
			providers[name] = payments.NewHTTPProvider(url, o.ProviderTimeout, client)
		}
		st, err := store(ctx, db, payments.NewMemoryStore, payments.NewSQLStore)
		if err != nil {
			return err
		}
		st = payments.Publishing(srv, st) // the settle pass's changes are events too
		if err := payments.Register(srv, st, providers); err != nil {
			return err
		}
		if o.SettleInterval >= 0 {
			log := o.Logger.With("task", "settle")
			start(func(ctx context.Context) {
				payments.SettleEvery(ctx, st, providers, o.SettleInterval, o.SettleOlderThan, log)
			})
		}
		return nil
	}
	return fmt.Errorf("unknown service %q", o.Service)
}

// dial reaches a service this one calls, over CallTLS, or in plaintext
// on loopback or when InsecurePlaintext says so.
func dial(o Options, service, target string) (*caller.Client, error) {
	opts := []caller.Option{caller.WithKey(o.CallKey), caller.WithLogger(o.Logger)}
	switch {
	case o.CallTLS != nil:
		creds := credentials.NewTLS(tlsfiles.ForTarget(o.CallTLS, target))
		opts = append(opts, caller.WithGRPCDialOptions(grpc.WithTransportCredentials(creds)))
	case !o.InsecurePlaintext && !tlsfiles.LoopbackTarget(target):
		return nil, tlsfiles.PlaintextDialError(service, target, "set -service-tls-ca, or allow it with -insecure-plaintext")
	}
	return caller.Dial(target, opts...)
}

// store returns the service's store: in db, or in memory when db is nil.
func store[S any](ctx context.Context, db *sqldb.DB, memory func() S, inDB func(context.Context, *sqldb.DB) (S, error)) (S, error) {
	if db == nil {
		return memory(), nil
	}
	return inDB(ctx, db)
}

// openDB opens the service's database; nil for the memory store.
func openDB(ctx context.Context, o Options) (*sqldb.DB, error) {
	switch o.Store {
	case StoreMemory:
		return nil, nil
	case "", StoreSQLite:
		dir := o.DataDir
		if dir == "" {
			dir = "data"
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		return sqldb.Open(ctx, sqldb.SQLite, filepath.Join(dir, o.Service+".db"))
	case StorePostgres:
		if o.DSN == "" {
			return nil, errors.New("the postgres store needs a DSN")
		}
		return sqldb.Open(ctx, sqldb.Postgres, o.DSN)
	}
	return nil, fmt.Errorf("unknown store %q (want sqlite, memory or postgres)", o.Store)
}
