package payments_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	cardOK       = "4242424242424242"
	cardDeclined = "4000000000000002"
	cardHangs    = "4000000000000119"
	cardUnknown  = "4111111111111111"
	cardLost     = "4000000000000259"

	// providerTimeout is the tests' gateway timeout: short, so the hanging
	// card fails fast.
	providerTimeout = 200 * time.Millisecond
	testDeadline    = 30 * time.Second
)

// storeKinds are the three stores every storage test runs against.
var storeKinds = []struct {
	name string
	open func(t *testing.T) payments.Store
}{
	{"memory", func(*testing.T) payments.Store { return payments.NewMemoryStore() }},
	{"sqlite", func(t *testing.T) payments.Store { return sqlStore(t, sqltest.SQLite(t)) }},
	{"postgres", func(t *testing.T) payments.Store { return sqlStore(t, sqltest.Postgres(t)) }},
}

func sqlStore(t *testing.T, db *sqldb.DB) payments.Store {
	t.Helper()
	st, err := payments.NewSQLStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// testHTTPClient returns an HTTP client whose idle connections close at
// cleanup.
func testHTTPClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// startSandbox starts a sandbox gateway, closed at cleanup, and returns it
// with a provider that talks to it.
func startSandbox(t testing.TB, name string, latency, timeout time.Duration, hc *http.Client) (*payments.Sandbox, payments.Provider) {
	t.Helper()
	sb := payments.NewSandbox(name, latency)
	url, err := sb.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	return sb, payments.NewHTTPProvider(url, timeout, hc)
}

// env is a payments service on a real socket, with sandbox gateways A, B
// and C behind it.
type env struct {
	t         testing.TB
	c         *socketcaller.Client
	ctx       context.Context
	sandboxes map[string]*payments.Sandbox
	providers map[string]payments.Provider // to the sandboxes, by gateway
}

func newEnv(t testing.TB, st payments.Store) *env {
	t.Helper()
	hc := testHTTPClient(t)
	e := &env{t: t, sandboxes: map[string]*payments.Sandbox{}}
	providers := map[string]payments.Provider{}
	for name, latency := range map[string]time.Duration{"A": 5 * time.Millisecond, "B": 8 * time.Millisecond, "C": 3 * time.Millisecond} {
		e.sandboxes[name], providers[name] = startSandbox(t, name, latency, providerTimeout, hc)
	}
	srv, err := socket.NewServer(socket.Config{Name: "payments"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := payments.Register(srv, st, providers); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	e.c, e.ctx = sockettest.Start(t, srv), ctx
	e.providers = providers
	return e
}

// caller describes who calls, in which version, with which key.
type caller struct {
	version, subject, key string
	roles                 []string
}

func (e *env) as(c caller) context.Context {
	return socketcaller.ContextWithMeta(e.ctx, socket.Meta{
		APIVersion:     c.version,
		Principal:      socket.Principal{Subject: c.subject, Roles: c.roles},
		IdempotencyKey: c.key,
	})
}

var (
	alice = caller{version: "v2", subject: "alice"}
	bob   = caller{version: "v2", subject: "bob"}
	admin = caller{version: "v2", subject: "root", roles: []string{"admin"}}
)

func (e *env) pay(c caller, in payments.PayInput) (payments.Payment, error) {
	return socketcaller.Call[payments.Payment](e.as(c), e.c, "PAY", "", in)
}

func (e *env) get(c caller, id string) payments.Payment {
	e.t.Helper()
	p, err := socketcaller.Call[payments.Payment](e.as(c), e.c, "GET_PAYMENT", id, nil)
	if err != nil {
		e.t.Fatalf("GET_PAYMENT %s: %v", id, err)
	}
	return p
}

// charges returns the charge requests each sandbox has received.
func (e *env) charges() map[string]int64 {
	m := map[string]int64{}
	for name, sb := range e.sandboxes {
		m[name] = sb.Charges()
	}
	return m
}

// newCharges returns how many charge requests all sandboxes received
// since before.
func (e *env) newCharges(before map[string]int64) int64 {
	var n int64
	for name, sb := range e.sandboxes {
		n += sb.Charges() - before[name]
	}
	return n
}

// wantCode fails unless err is an *status.Error with the code and, when
// reason is set, that details reason; it returns the error.
func wantCode(t testing.TB, err error, code status.Code, reason string) *status.Error {
	t.Helper()
	var se *status.Error
	if !errors.As(err, &se) || se.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
	if reason != "" && se.Details[socket.DetailReason] != reason {
		t.Fatalf("got reason %v (%v), want %s", se.Details[socket.DetailReason], se, reason)
	}
	return se
}
