package faults_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/reconcile"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/users"
	"github.com/streamgate/streamgate/tools/internal/faultproxy"
	"github.com/streamgate/streamgate/tools/internal/resttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(removingBin{m}) }

const (
	configPath = "../../../../gateway/stack.yaml"
	adminKey   = "fault-admin-key"
	jwtSecret  = "fault-jwt-secret"
	serviceKey = "fault-service-key"
	// waitLong bounds every wait of the suite: far above what any step
	// needs, so a busy machine does not fail it.
	waitLong = 30 * time.Second
)

// cardOK is the sandbox's approved card.
const cardOK = "4242424242424242"

// cluster is the shop behind the gateway, each service with its
// instances behind fault proxies.
type cluster struct {
	rest      *resttest.Client // of the REST edge
	services  map[string]*service
	sandboxes map[string]*payments.Sandbox
	stop      func()
	// initialStock maps the id of each item newItem made to its stock
	// then, for the stock check of settled.
	initialStock sync.Map
}

// service is one service's instances, sharing register (and so one
// store, as instances share one database).
type service struct {
	name      string
	register  func(*socket.Server) error
	instances []*instance
	opts      []socket.ServerOption
}

// instance is one server of a service and the proxy in front of it.
type instance struct {
	svc   *service
	addr  string // where the server listens; kept across restarts
	proxy *faultproxy.Proxy

	mu     sync.Mutex // guards cancel and done
	cancel context.CancelFunc
	done   chan error
}

// start serves the instance on its address (a fresh port the first
// time).
func (in *instance) start(t testing.TB) {
	t.Helper()
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true, Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]socket.ServerOption{socket.WithKeys(keys), socket.WithDrainTimeout(5 * time.Second)}, in.svc.opts...)
	srv, err := socket.NewServer(socket.Config{Name: in.svc.name, Version: "faults"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.svc.register(srv); err != nil {
		t.Fatal(err)
	}
	addr := in.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr) // a restart takes the same port again
	if err != nil {
		t.Fatal(err)
	}
	in.addr = lis.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	in.mu.Lock()
	in.cancel, in.done = cancel, done
	in.mu.Unlock()
}

// stop drains the instance and waits until it has stopped.
func (in *instance) stop(t testing.TB) {
	t.Helper()
	in.mu.Lock()
	cancel, done := in.cancel, in.done
	in.cancel, in.done = nil, nil
	in.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s at %s: %v", in.svc.name, in.addr, err)
		}
	case <-time.After(waitLong):
		t.Errorf("%s at %s did not stop", in.svc.name, in.addr)
	}
}

// options of a cluster.
type options struct {
	// instances per service; default 1.
	instances map[string]int
	// serverOpts per service.
	serverOpts map[string][]socket.ServerOption
	// provider wraps each payment provider (e.g. to lose an answer).
	provider func(name string, p payments.Provider) payments.Provider
	// cache turns the gateway's cache and coalescing on.
	cache bool
	// redis, when set, is the gateway's redis: URL (cache generations
	// and Idempotency-Key store), added to the stack's configuration.
	redis string
}

// startCluster builds the shop with memory stores, the sandboxes, and the
// gateway reaching every instance through its proxy.
func startCluster(t *testing.T, o options) *cluster {
	t.Helper()
	c := &cluster{services: map[string]*service{}, sandboxes: map[string]*payments.Sandbox{}}
	providers := map[string]payments.Provider{}
	for name, latency := range map[string]time.Duration{"A": 5 * time.Millisecond, "B": 10 * time.Millisecond, "C": 15 * time.Millisecond} {
		sb := payments.NewSandbox(name, latency)
		url, err := sb.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sb.Close)
		c.sandboxes[name] = sb
		p := payments.NewHTTPProvider(url, 2*time.Second, nil)
		if o.provider != nil {
			p = o.provider(name, p)
		}
		providers[name] = p
	}

	userStore, itemStore, orderStore, paymentStore := users.NewMemoryStore(), inventory.NewMemoryStore(), orders.NewMemoryStore(), payments.NewMemoryStore()
	var pricer *caller.Client // orders asks inventory, through its proxies
	c.add(t, "users", o, func(srv *socket.Server) error { return users.Register(srv, userStore) })
	c.add(t, "inventory", o, func(srv *socket.Server) error { return inventory.Register(srv, itemStore) })
	inv, err := caller.Dial(c.target("inventory"), caller.WithKey(serviceKey))
	if err != nil {
		t.Fatal(err)
	}
	pricer = inv
	t.Cleanup(func() { pricer.Close() })
	c.add(t, "orders", o, func(srv *socket.Server) error { return orders.Register(srv, orderStore, orders.SocketPricer(pricer)) })
	c.add(t, "payments", o, func(srv *socket.Server) error { return payments.Register(srv, paymentStore, providers) })

	targets := map[string]string{}
	for name := range c.services {
		targets[name] = c.target(name)
	}
	env := map[string]string{"STREAMGATE_SERVICE_KEY": serviceKey, "STREAMGATE_ADMIN_KEY": adminKey, "STREAMGATE_JWT_SECRET": jwtSecret}
	var gwOpts []gateway.Option
	if !o.cache {
		gwOpts = append(gwOpts, gateway.WithCacheSize(0), gateway.WithoutCoalescing())
	}
	var configData []byte
	if o.redis != "" {
		stack, err := os.ReadFile(configPath)
		if err != nil {
			t.Fatal(err)
		}
		configData = append(stack, "\nredis: "+o.redis+"\n"...)
	}
	ready := make(chan gateway.Addrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- gateway.Run(ctx, gateway.RunOptions{
			ConfigPath: configPath, ConfigData: configData, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
			Env:     func(k string) string { return env[k] },
			Targets: targets,
			Dial:    []caller.Option{caller.WithBackoff(20*time.Millisecond, 500*time.Millisecond)},
			Options: gwOpts,
			Ready:   func(a gateway.Addrs) { ready <- a },
		})
	}()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256
	c.rest = &resttest.Client{HTTP: &http.Client{Transport: transport, Timeout: waitLong}}
	var once sync.Once
	c.stop = func() {
		once.Do(func() {
			transport.CloseIdleConnections()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("gateway: %v", err)
				}
			case <-time.After(waitLong):
				t.Errorf("the gateway did not stop")
			}
			for _, s := range c.services {
				for _, in := range s.instances {
					in.stop(t)
					in.proxy.Close()
				}
			}
		})
	}
	t.Cleanup(c.stop)
	select {
	case a := <-ready:
		c.rest.Base = "http://" + a.HTTP
	case err := <-done:
		done <- err
		t.Fatalf("the gateway stopped: %v", err)
	case <-time.After(waitLong):
		t.Fatal("the gateway was not ready")
	}
	return c
}

// add starts a service's instances, each behind a proxy.
func (c *cluster) add(t *testing.T, name string, o options, register func(*socket.Server) error) {
	t.Helper()
	s := &service{name: name, register: register, opts: o.serverOpts[name]}
	n := max(o.instances[name], 1)
	for range n {
		in := &instance{svc: s}
		in.start(t)
		p, err := faultproxy.Start(in.addr)
		if err != nil {
			t.Fatal(err)
		}
		in.proxy = p
		s.instances = append(s.instances, in)
	}
	c.services[name] = s
}

// target is the static list of a service's proxies, as the gateway and
// the other services dial it.
func (c *cluster) target(name string) string {
	var addrs []string
	for _, in := range c.services[name].instances {
		addrs = append(addrs, in.proxy.Addr())
	}
	return "static:///" + strings.Join(addrs, ",")
}

// reply is an answer of the REST edge.
type reply = resttest.Reply

// do sends one request as cred ("" for none); header holds name, value
// pairs.
func (c *cluster) do(cred, method, path string, body any, header ...string) (reply, error) {
	return c.rest.Do(cred, method, path, body, header...)
}

// call is do that fails the test on a transport error or an unexpected
// status.
func (c *cluster) call(t testing.TB, cred, method, path string, body any, status int, header ...string) reply {
	t.Helper()
	r, err := c.do(cred, method, path, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != status {
		t.Fatalf("%s %s: got %d, want %d: %s", method, path, r.Status, status, r.Raw)
	}
	return r
}

// as returns a user token.
func as(t testing.TB, userID string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "streamgate", "sub": userID, "roles": []string{"user"}, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "key-" + hex.EncodeToString(b[:])
}

// newItem has the admin create an item.
func (c *cluster) newItem(t testing.TB, name string, price, stock int64) inventory.Item {
	t.Helper()
	it := resttest.Into[inventory.Item](t, c.call(t, adminKey, "POST", "/v1/items", map[string]any{"name": name, "price_cents": price, "stock": stock}, http.StatusCreated))
	c.initialStock.Store(it.ID, it.Stock)
	return it
}

// newUser has the admin create a user.
func (c *cluster) newUser(t testing.TB, id string) {
	t.Helper()
	c.call(t, adminKey, "POST", "/v1/users", map[string]any{"id": id, "name": "User " + id, "email": id + "@example.com"}, http.StatusCreated)
}

// newOrder has the user order one of the item.
func (c *cluster) newOrder(t testing.TB, user, itemID string) orders.Order {
	t.Helper()
	return resttest.Into[orders.Order](t, c.call(t, as(t, user), "POST", "/v1/orders", map[string]any{"lines": []orders.Line{{ItemID: itemID, Quantity: 1}}}, http.StatusCreated))
}

// payments lists an order's payments as the admin.
func (c *cluster) payments(t testing.TB, orderID string) []payments.Payment {
	t.Helper()
	return resttest.Into[payments.Page](t, c.call(t, adminKey, "GET", "/v1/payments?order_id="+orderID, nil, http.StatusOK)).Items
}

// order reads an order as the admin.
func (c *cluster) order(t testing.TB, id string) orders.Order {
	t.Helper()
	return resttest.Into[orders.Order](t, c.call(t, adminKey, "GET", "/v1/orders/"+id, nil, http.StatusOK))
}

// settled fails the test unless a reconciliation run finds nothing to
// settle: every charge pays its order, no purchase is left paying, no
// payment pending, no stock held for a purchase that will not be paid;
// and the stock of every item newItem made is its initial stock less what
// paid orders took (stockExact). The run looks three minutes ahead, so
// that leases and payments of purchases still running would count as
// stuck too.
func (c *cluster) settled(t testing.TB) {
	t.Helper()
	c.settledThrough(t, func(name string) (*caller.Client, error) {
		return caller.Dial(c.target(name), caller.WithKey(serviceKey))
	})
}

// settledThrough is settled with the clients of the services that dial
// returns, by service name.
func (c *cluster) settledThrough(t testing.TB, dialService func(name string) (*caller.Client, error)) {
	t.Helper()
	dial := func(name string) *caller.Client {
		cl, err := dialService(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	report, err := reconcile.Run(ctx, reconcile.Options{
		Orders: dial("orders"), Payments: dial("payments"), Inventory: dial("inventory"),
		Now:       func() time.Time { return time.Now().Add(3 * time.Minute) },
		OlderThan: time.Minute,
	})
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if len(report.Entries) > 0 || len(report.Unresolved) > 0 || report.InFlight > 0 {
		t.Errorf("reconcile found something to settle: %s\n%+v", report.Summary(), report)
	}
	c.stockExact(t, dial("orders"), dial("inventory"))
}
