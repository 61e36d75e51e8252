package stack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for postgresDSN
	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/users"
	"github.com/streamgate/streamgate/status"
	"github.com/streamgate/streamgate/tools/internal/polyglottest"
	"github.com/streamgate/streamgate/tools/internal/resttest"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// repoRoot is the checkout whose services/node and services/python the
// mixed shop runs (polyglottest.Env=1: every stack of these tests runs
// users in Python and inventory in Node).
const repoRoot = "../../../.."

// The sandbox's test cards.
const (
	cardOK       = "4242424242424242"
	cardDeclined = "4000000000000002"
	cardHangs    = "4000000000000119"
)

const (
	configPath = "../../../../gateway/stack.yaml"
	adminKey   = "test-admin-key"
	jwtSecret  = "test-jwt-secret"
	// startTimeout bounds a stack's start and its stop.
	startTimeout = 30 * time.Second
	// requestTimeout bounds one HTTP request; the slowest (a provider
	// timeout) takes about 2s.
	requestTimeout = 20 * time.Second
)

// testStack is a running stack and a client of its REST edge.
type testStack struct {
	rest  *resttest.Client // of the REST edge
	grpc  string           // the gateway's gRPC address
	admin string           // the admin listener's base URL
	demo  string           // the demo page's URL, as the banner tells it
	stop  func()           // stops the stack and waits for it; idempotent
	// runtimes are the services in other languages than Go, by name.
	runtimes map[string]string
	// banner is what the stack printed up to "ready".
	banner string
	// gateways are every gateway's REST URL, the first's first.
	gateways []string
	// nats is the URL of the NATS server the gateways call the services
	// over ("" when on their streams).
	nats string
}

// banner is the stack's Out: it keeps what the stack prints and closes
// ready when the line "ready" arrives.
type banner struct {
	ready chan struct{}

	mu     sync.Mutex // guards buf and closed
	buf    bytes.Buffer
	closed bool
}

func (b *banner) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if !b.closed && (strings.HasPrefix(b.buf.String(), "ready\n") || strings.Contains(b.buf.String(), "\nready\n")) {
		b.closed = true
		close(b.ready)
	}
	return len(p), nil
}

func (b *banner) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// field returns the second word of the first line whose first word is key.
func (b *banner) field(key string) string {
	if all := b.fields(key); len(all) > 0 {
		return all[0]
	}
	return ""
}

// fields returns the second word of every line whose first word is key
// (each gateway's "REST").
func (b *banner) fields(key string) []string {
	var out []string
	for line := range strings.Lines(b.String()) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			out = append(out, f[1])
		}
	}
	return out
}

// startStack runs a stack with the memory store (unless o says otherwise)
// on free ports, waits for "ready", and stops it at cleanup.
func startStack(t testing.TB, o stack.Options) *testStack {
	t.Helper()
	o.ConfigPath = configPath
	o.HTTPAddr, o.GRPCAddr, o.AdminAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if o.Store == "" {
		o.Store = run.StoreMemory
	}
	if o.Runtimes == nil && polyglottest.On(t, repoRoot) {
		var err error
		if o.Runtimes, err = stack.ParseRuntimes(polyglottest.Services); err != nil {
			t.Fatal(err)
		}
		o.Root = repoRoot
	}
	o.AdminKey, o.JWTSecret = adminKey, jwtSecret
	afterNATS := onNATS(t, &o)
	out := &banner{ready: make(chan struct{})}
	o.Out = out

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stack.Run(ctx, o) }()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256 // BenchmarkPurchase's callers
	var once sync.Once
	stop := func() {
		once.Do(func() {
			transport.CloseIdleConnections()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("stack.Run: %v", err)
				}
			case <-time.After(startTimeout):
				t.Errorf("the stack did not stop within %v", startTimeout)
			}
			if afterNATS != nil {
				afterNATS()
			}
		})
	}
	t.Cleanup(stop)

	select {
	case <-out.ready:
	case err := <-done:
		done <- err // for stop
		t.Fatalf("the stack stopped before it was ready: %v\n%s", err, out)
	case <-time.After(startTimeout):
		t.Fatalf("the stack was not ready within %v:\n%s", startTimeout, out)
	}
	rest := out.field("REST")
	if !strings.HasPrefix(rest, "http://") {
		t.Fatalf("no REST address before ready:\n%s", out)
	}
	var rt http.RoundTripper = transport
	if rests := out.fields("REST"); len(rests) > 1 {
		a := &alternate{next: transport}
		for _, r := range rests {
			u, err := url.Parse(r)
			if err != nil {
				t.Fatal(err)
			}
			a.hosts = append(a.hosts, u.Host)
		}
		a.first = a.hosts[0]
		rt = a
	}
	return &testStack{rest: &resttest.Client{Base: rest, HTTP: &http.Client{Transport: rt, Timeout: requestTimeout}}, grpc: out.field("gRPC"), admin: out.field("admin"), demo: out.field("demo"), stop: stop, banner: out.String(), runtimes: o.Runtimes, nats: out.field("NATS"), gateways: out.fields("REST")}
}

// admin returns the admin's credential; credentials are what goes after
// "Bearer ".
func admin() string { return adminKey }

// as returns a user token for the user id.
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

// anonymous is no credential at all.
const anonymous = ""

// reply is an answer of the REST edge.
type reply = resttest.Reply

// call sends one request; body is JSON-encoded unless nil; header holds
// extra name, value pairs. It fails the test when there is no envelope.
func (s *testStack) call(t testing.TB, cred, method, path string, body any, header ...string) reply {
	t.Helper()
	r, err := s.do(cred, method, path, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// do is call for other goroutines than the test's.
func (s *testStack) do(cred, method, path string, body any, header ...string) (reply, error) {
	return s.rest.Do(cred, method, path, body, header...)
}

// newUser has the admin create an active user with the id.
func (s *testStack) newUser(t testing.TB, id string) users.User {
	t.Helper()
	r := s.call(t, admin(), "POST", "/v1/users", map[string]any{"id": id, "name": "User " + id, "email": id + "@example.com"})
	return resttest.Into[users.User](t, r.Want(t, http.StatusCreated, ""))
}

// newItem has the admin create an item.
func (s *testStack) newItem(t testing.TB, priceCents, stock int64) inventory.Item {
	t.Helper()
	r := s.call(t, admin(), "POST", "/v1/items", map[string]any{"name": "widget", "price_cents": priceCents, "stock": stock})
	return resttest.Into[inventory.Item](t, r.Want(t, http.StatusCreated, ""))
}

// newOrder has the user order quantity of the item, with a voucher unless
// code is "".
func (s *testStack) newOrder(t testing.TB, userID, itemID string, quantity int64, code string) orders.Order {
	t.Helper()
	body := map[string]any{"lines": []orders.Line{{ItemID: itemID, Quantity: quantity}}}
	if code != "" {
		body["voucher_code"] = code
	}
	r := s.call(t, as(t, userID), "POST", "/v1/orders", body)
	return resttest.Into[orders.Order](t, r.Want(t, http.StatusCreated, ""))
}

// pay is POST /{version}/orders/{id}/pay as cred.
func (s *testStack) pay(t testing.TB, version, cred, orderID, gateway, card string, header ...string) reply {
	t.Helper()
	r, err := s.tryPay(version, cred, orderID, gateway, card, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryPay is pay for other goroutines than the test's. Each pay gets a
// fresh Idempotency-Key unless header names one.
func (s *testStack) tryPay(version, cred, orderID, gateway, card string, header ...string) (reply, error) {
	if !hasHeader(header, "Idempotency-Key") {
		header = append(header, "Idempotency-Key", newKey())
	}
	return s.do(cred, "POST", "/"+version+"/orders/"+orderID+"/pay", map[string]any{"gateway": gateway, "card": card}, header...)
}

// hasHeader reports whether name, value pairs name the header.
func hasHeader(pairs []string, name string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if http.CanonicalHeaderKey(pairs[i]) == http.CanonicalHeaderKey(name) {
			return true
		}
	}
	return false
}

// newKey returns a fresh Idempotency-Key.
func newKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "key-" + hex.EncodeToString(b[:])
}

// item reads an item as anyone does.
func (s *testStack) item(t testing.TB, id string) inventory.Item {
	t.Helper()
	return resttest.Into[inventory.Item](t, s.call(t, anonymous, "GET", "/v1/items/"+id, nil).Want(t, http.StatusOK, ""))
}

// order reads an order as the admin.
func (s *testStack) order(t testing.TB, id string) orders.Order {
	t.Helper()
	return resttest.Into[orders.Order](t, s.call(t, admin(), "GET", "/v1/orders/"+id, nil).Want(t, http.StatusOK, ""))
}

// payments lists an order's payments as the admin, counted by status.
func (s *testStack) payments(t testing.TB, orderID string) map[payments.Status]int {
	t.Helper()
	r := s.call(t, admin(), "GET", "/v1/payments?order_id="+orderID, nil).Want(t, http.StatusOK, "")
	n := map[payments.Status]int{}
	for _, p := range resttest.Into[payments.Page](t, r).Items {
		if p.OrderID != orderID {
			t.Fatalf("listed payment %s of order %s when asking for order %s", p.ID, p.OrderID, orderID)
		}
		n[p.Status]++
	}
	return n
}

func TestCRUD(t *testing.T) {
	s := startStack(t, stack.Options{})

	t.Run("users", func(t *testing.T) {
		t.Parallel()
		alice := s.newUser(t, "crud-alice")
		if alice.Status != users.StatusActive || alice.Email != "crud-alice@example.com" {
			t.Fatalf("created %+v", alice)
		}
		// A signed-in user creates their own user; the id is their subject.
		bob := resttest.Into[users.User](t, s.call(t, as(t, "crud-bob"), "POST", "/v1/users", map[string]any{"name": "Bob", "email": "Bob@Example.com"}).
			Want(t, http.StatusCreated, ""))
		if bob.ID != "crud-bob" || bob.Email != "bob@example.com" {
			t.Fatalf("self-created %+v", bob)
		}
		s.call(t, admin(), "POST", "/v1/users", map[string]any{"name": "Eve", "email": "bob@example.com"}).Want(t, http.StatusConflict, socket.CodeAlreadyExists)
		s.call(t, anonymous, "POST", "/v1/users", map[string]any{"name": "Eve", "email": "eve@example.com"}).Want(t, http.StatusUnauthorized, socket.CodeUnauthenticated)

		got := resttest.Into[users.User](t, s.call(t, as(t, "crud-bob"), "GET", "/v1/users/crud-bob", nil).Want(t, http.StatusOK, ""))
		if got.Name != "Bob" {
			t.Fatalf("read %+v", got)
		}
		page := resttest.Into[users.Page](t, s.call(t, admin(), "GET", "/v1/users?page_size=100", nil).Want(t, http.StatusOK, ""))
		if ids := userIDs(page.Items); !strings.Contains(ids, "crud-alice") || !strings.Contains(ids, "crud-bob") {
			t.Fatalf("list: %s", ids)
		}
		s.call(t, as(t, "crud-bob"), "GET", "/v1/users", nil).Want(t, http.StatusForbidden, socket.CodePermissionDenied)

		got = resttest.Into[users.User](t, s.call(t, as(t, "crud-bob"), "PATCH", "/v1/users/crud-bob", map[string]any{"name": "Robert"}).Want(t, http.StatusOK, ""))
		if got.Name != "Robert" || got.Email != "bob@example.com" {
			t.Fatalf("updated %+v", got)
		}
		// The update is what the owner reads next, not a cached answer.
		got = resttest.Into[users.User](t, s.call(t, as(t, "crud-bob"), "GET", "/v1/users/crud-bob", nil).Want(t, http.StatusOK, ""))
		if got.Name != "Robert" {
			t.Fatalf("read after update: %+v", got)
		}
		s.call(t, as(t, "crud-bob"), "PATCH", "/v1/users/crud-bob", map[string]any{"status": "suspended"}).Want(t, http.StatusForbidden, socket.CodePermissionDenied)
		s.call(t, as(t, "crud-bob"), "DELETE", "/v1/users/crud-bob", nil).Want(t, http.StatusForbidden, socket.CodePermissionDenied)
		s.call(t, admin(), "DELETE", "/v1/users/crud-bob", nil).Want(t, http.StatusOK, "")
		s.call(t, admin(), "GET", "/v1/users/crud-bob", nil).Want(t, http.StatusNotFound, socket.CodeNotFound)
	})

	t.Run("items", func(t *testing.T) {
		t.Parallel()
		it := s.newItem(t, 1250, 7)
		if it.ID == "" || it.PriceCents != 1250 || it.Stock != 7 {
			t.Fatalf("created %+v", it)
		}
		if got := s.item(t, it.ID); got != it {
			t.Fatalf("read %+v, want %+v", got, it)
		}
		body := map[string]any{"name": "gadget", "price_cents": 1}
		s.call(t, anonymous, "POST", "/v1/items", body).Want(t, http.StatusForbidden, socket.CodePermissionDenied)
		s.call(t, as(t, "crud-carol"), "POST", "/v1/items", body).Want(t, http.StatusForbidden, socket.CodePermissionDenied)
		s.call(t, as(t, "crud-carol"), "PATCH", "/v1/items/"+it.ID, map[string]any{"price_cents": 1}).Want(t, http.StatusForbidden, socket.CodePermissionDenied)

		s.call(t, admin(), "PATCH", "/v1/items/"+it.ID, map[string]any{"price_cents": 999, "stock": 3}).Want(t, http.StatusOK, "")
		// Items are cached for everyone; an update drops the cached copy.
		if got := s.item(t, it.ID); got.PriceCents != 999 || got.Stock != 3 || got.Name != "widget" {
			t.Fatalf("read after update: %+v", got)
		}
		page := resttest.Into[inventory.Page](t, s.call(t, anonymous, "GET", "/v1/items?page_size=1000", nil).Want(t, http.StatusOK, ""))
		found := false
		for _, x := range page.Items {
			found = found || x.ID == it.ID
		}
		if !found {
			t.Fatalf("list does not hold %s: %+v", it.ID, page.Items)
		}
		r := s.call(t, anonymous, "POST", "/v1/items/check_available", map[string]any{"lines": []inventory.Line{{ItemID: it.ID, Quantity: 5}}}).Want(t, http.StatusOK, "")
		if a := resttest.Into[inventory.Availability](t, r); a.Available || len(a.Missing) != 1 || a.Missing[0].InStock != 3 {
			t.Fatalf("check_available of 5 of 3: %+v", a)
		}
		s.call(t, admin(), "DELETE", "/v1/items/"+it.ID, nil).Want(t, http.StatusOK, "")
		s.call(t, anonymous, "GET", "/v1/items/"+it.ID, nil).Want(t, http.StatusNotFound, socket.CodeNotFound)
	})

	t.Run("vouchers", func(t *testing.T) {
		t.Parallel()
		v := resttest.Into[orders.Voucher](t, s.call(t, admin(), "POST", "/v1/vouchers", map[string]any{"code": "crud-save5", "discount_cents": 500}).
			Want(t, http.StatusCreated, ""))
		if v.Code != "CRUD-SAVE5" || v.DiscountCents != 500 {
			t.Fatalf("created %+v", v)
		}
		s.call(t, admin(), "POST", "/v1/vouchers", map[string]any{"code": "CRUD-SAVE5", "discount_cents": 1}).Want(t, http.StatusConflict, socket.CodeAlreadyExists)
		s.call(t, as(t, "crud-dave"), "POST", "/v1/vouchers", map[string]any{"code": "MINE", "discount_cents": 1}).Want(t, http.StatusForbidden, socket.CodePermissionDenied)
		if got := resttest.Into[orders.Voucher](t, s.call(t, as(t, "crud-dave"), "GET", "/v1/vouchers/CRUD-SAVE5", nil).Want(t, http.StatusOK, "")); got != v {
			t.Fatalf("read %+v", got)
		}
		page := resttest.Into[orders.Page[orders.Voucher]](t, s.call(t, admin(), "GET", "/v1/vouchers", nil).Want(t, http.StatusOK, ""))
		if len(page.Items) == 0 {
			t.Fatal("list: no vouchers")
		}
		s.call(t, as(t, "crud-dave"), "GET", "/v1/vouchers", nil).Want(t, http.StatusForbidden, socket.CodePermissionDenied)
		got := resttest.Into[orders.Voucher](t, s.call(t, admin(), "PATCH", "/v1/vouchers/CRUD-SAVE5", map[string]any{"discount_cents": 700}).Want(t, http.StatusOK, ""))
		if got.DiscountCents != 700 {
			t.Fatalf("updated %+v", got)
		}
		s.call(t, admin(), "DELETE", "/v1/vouchers/CRUD-SAVE5", nil).Want(t, http.StatusOK, "")
		s.call(t, admin(), "GET", "/v1/vouchers/CRUD-SAVE5", nil).Want(t, http.StatusNotFound, socket.CodeNotFound)
	})

	t.Run("orders", func(t *testing.T) {
		t.Parallel()
		s.newUser(t, "crud-erin")
		a, b := s.newItem(t, 1000, 5), s.newItem(t, 250, 5)
		s.call(t, admin(), "POST", "/v1/vouchers", map[string]any{"code": "CRUD-ORDER", "discount_cents": 300}).Want(t, http.StatusCreated, "")
		erin := as(t, "crud-erin")

		body := map[string]any{"lines": []orders.Line{{ItemID: a.ID, Quantity: 2}, {ItemID: b.ID, Quantity: 1}}, "voucher_code": "crud-order"}
		o := resttest.Into[orders.Order](t, s.call(t, erin, "POST", "/v1/orders", body).Want(t, http.StatusCreated, ""))
		if o.UserID != "crud-erin" || o.Status != orders.StatusPending || o.TotalCents != 2*1000+250-300 || o.VoucherCode != "CRUD-ORDER" {
			t.Fatalf("created %+v", o)
		}
		s.call(t, erin, "POST", "/v1/orders", map[string]any{"lines": []orders.Line{{ItemID: "no-such-item", Quantity: 1}}}).Want(t, http.StatusNotFound, socket.CodeNotFound)
		s.call(t, erin, "POST", "/v1/orders", map[string]any{"lines": []orders.Line{{ItemID: a.ID, Quantity: 1}}, "voucher_code": "NOPE-NOPE"}).
			Want(t, http.StatusBadRequest, socket.CodeInvalidArgument)

		if got := resttest.Into[orders.Order](t, s.call(t, erin, "GET", "/v1/orders/"+o.ID, nil).Want(t, http.StatusOK, "")); got.TotalCents != o.TotalCents {
			t.Fatalf("read %+v", got)
		}
		page := resttest.Into[orders.Page[orders.Order]](t, s.call(t, erin, "GET", "/v1/orders", nil).Want(t, http.StatusOK, ""))
		if len(page.Items) != 1 || page.Items[0].ID != o.ID {
			t.Fatalf("list: %+v", page.Items)
		}
		vc := s.call(t, erin, "GET", "/v1/orders/"+o.ID+"/check_voucher", nil).Want(t, http.StatusOK, "")
		if v := resttest.Into[orders.VoucherCheck](t, vc); v.Voucher == nil || v.Voucher.Code != "CRUD-ORDER" {
			t.Fatalf("check_voucher: %s", vc.Raw)
		}

		upd := map[string]any{"lines": []orders.Line{{ItemID: b.ID, Quantity: 4}}, "voucher_code": ""}
		got := resttest.Into[orders.Order](t, s.call(t, erin, "PATCH", "/v1/orders/"+o.ID, upd).Want(t, http.StatusOK, ""))
		if got.TotalCents != 4*250 || got.VoucherCode != "" || len(got.Lines) != 1 {
			t.Fatalf("updated %+v", got)
		}
		if got := resttest.Into[orders.Order](t, s.call(t, erin, "GET", "/v1/orders/"+o.ID, nil).Want(t, http.StatusOK, "")); got.TotalCents != 4*250 {
			t.Fatalf("read after update: %+v", got)
		}
		s.call(t, erin, "DELETE", "/v1/orders/"+o.ID, nil).Want(t, http.StatusOK, "")
		s.call(t, erin, "GET", "/v1/orders/"+o.ID, nil).Want(t, http.StatusNotFound, socket.CodeNotFound)
		s.call(t, anonymous, "GET", "/v1/orders", nil).Want(t, http.StatusUnauthorized, socket.CodeUnauthenticated)
	})

	t.Run("payments", func(t *testing.T) {
		t.Parallel()
		s.newUser(t, "crud-frank")
		it := s.newItem(t, 4200, 5)
		o := s.newOrder(t, "crud-frank", it.ID, 1, "")
		frank := as(t, "crud-frank")
		paid := resttest.Into[orders.Order](t, s.pay(t, "v1", frank, o.ID, "A", cardOK).Want(t, http.StatusOK, ""))
		if paid.PaymentID == "" {
			t.Fatalf("paid order without payment id: %+v", paid)
		}

		p := resttest.Into[payments.Payment](t, s.call(t, frank, "GET", "/v1/payments/"+paid.PaymentID, nil).Want(t, http.StatusOK, ""))
		if p.OrderID != o.ID || p.UserID != "crud-frank" || p.AmountCents != 4200 || p.Status != payments.StatusSucceeded || p.CardLast4 != "4242" || p.Gateway != "A" {
			t.Fatalf("payment %+v", p)
		}
		s.call(t, as(t, "crud-gina"), "GET", "/v1/payments/"+p.ID, nil).Want(t, http.StatusNotFound, socket.CodeNotFound) // like a missing one
		mine := resttest.Into[payments.Page](t, s.call(t, frank, "GET", "/v1/payments", nil).Want(t, http.StatusOK, ""))
		if len(mine.Items) != 1 || mine.Items[0].ID != p.ID {
			t.Fatalf("frank's payments: %+v", mine.Items)
		}
		if n := s.payments(t, o.ID); n[payments.StatusSucceeded] != 1 || len(n) != 1 {
			t.Fatalf("payments of the order: %v", n)
		}
		// Payments are read-only at the edge; refunds are for admins.
		s.call(t, admin(), "POST", "/v1/payments", map[string]any{"order_id": o.ID}).Want(t, http.StatusMethodNotAllowed, socket.CodeNotSupported)
		s.call(t, frank, "POST", "/v1/payments/"+p.ID+"/refund", nil).Want(t, http.StatusForbidden, socket.CodePermissionDenied)
		refunded := resttest.Into[payments.Payment](t, s.call(t, admin(), "POST", "/v1/payments/"+p.ID+"/refund", nil).Want(t, http.StatusOK, ""))
		if refunded.Status != payments.StatusRefunded {
			t.Fatalf("refunded %+v", refunded)
		}
		r := s.call(t, admin(), "POST", "/v1/payments/"+p.ID+"/refund", nil).Want(t, http.StatusUnprocessableEntity, socket.CodeFailedPrecondition)
		if r.Reason() != "not_refundable" {
			t.Fatalf("second refund: %s", r.Raw)
		}
		if got := resttest.Into[payments.Payment](t, s.call(t, admin(), "GET", "/v1/payments/"+p.ID, nil).Want(t, http.StatusOK, "")); got.Status != payments.StatusRefunded {
			t.Fatalf("read after refund: %+v", got)
		}
	})
}

func userIDs(us []users.User) string {
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	return strings.Join(ids, ",")
}

// TestPurchase runs the purchase flow of each version to each outcome and
// checks what it left behind: the order's status, the payments recorded
// for it and the item's stock.
func TestPurchase(t *testing.T) {
	s := startStack(t, stack.Options{})
	const stock, price = 5, 1500

	cases := []struct {
		name             string
		version, gateway string
		card             string
		suspended        bool  // the admin suspends the user first
		usedVoucher      bool  // the order's voucher was redeemed by another paid order
		paidBefore       bool  // the order was paid before, under the same version
		quantity         int64 // default 1
		status           int   // of the pay
		code             status.Code
		reason           string // details reason of the error
		failedPayments   int    // recorded by the provider's refusal
	}{
		{name: "v1 A", version: "v1", gateway: "A", status: 200},
		{name: "v2 A", version: "v2", gateway: "A", status: 200},
		{name: "v2 B", version: "v2", gateway: "B", status: 200},
		{name: "v2 C", version: "v2", gateway: "C", status: 200},
		{name: "v3 A", version: "v3", gateway: "A", status: 200},
		{name: "v3 B", version: "v3", gateway: "B", status: 200},

		{name: "v1 B not supported", version: "v1", gateway: "B", status: 422, code: socket.CodeNotSupported},
		{name: "v1 C not supported", version: "v1", gateway: "C", status: 422, code: socket.CodeNotSupported},
		{name: "v3 C not supported", version: "v3", gateway: "C", status: 422, code: socket.CodeNotSupported},

		{name: "v1 suspended pays", version: "v1", gateway: "A", suspended: true, status: 200},
		{name: "v2 suspended", version: "v2", gateway: "A", suspended: true, status: 422, code: socket.CodeFailedPrecondition, reason: "user_suspended"},
		{name: "v3 suspended", version: "v3", gateway: "A", suspended: true, status: 422, code: socket.CodeFailedPrecondition, reason: "user_suspended"},

		{name: "v1 used voucher", version: "v1", gateway: "A", usedVoucher: true, status: 422, code: socket.CodeFailedPrecondition, reason: orders.ReasonVoucherUsed},
		{name: "v2 used voucher", version: "v2", gateway: "A", usedVoucher: true, status: 422, code: socket.CodeFailedPrecondition, reason: orders.ReasonVoucherUsed},
		{name: "v3 used voucher", version: "v3", gateway: "A", usedVoucher: true, status: 422, code: socket.CodeFailedPrecondition, reason: orders.ReasonVoucherUsed},
		{name: "v3 out of stock", version: "v3", gateway: "A", quantity: stock + 1, status: 422, code: socket.CodeFailedPrecondition, reason: inventory.ReasonOutOfStock},

		{name: "v1 declined", version: "v1", gateway: "A", card: cardDeclined, status: 402, code: socket.CodeFailedPrecondition, reason: "card_declined", failedPayments: 1},
		{name: "v2 declined", version: "v2", gateway: "C", card: cardDeclined, status: 402, code: socket.CodeFailedPrecondition, reason: "card_declined", failedPayments: 1},
		{name: "v3 declined", version: "v3", gateway: "B", card: cardDeclined, status: 402, code: socket.CodeFailedPrecondition, reason: "card_declined", failedPayments: 1},

		{name: "v1 provider timeout", version: "v1", gateway: "A", card: cardHangs, status: 504, code: socket.CodeDeadlineExceeded, reason: "provider_timeout", failedPayments: 1},
		{name: "v3 provider timeout", version: "v3", gateway: "B", card: cardHangs, status: 504, code: socket.CodeDeadlineExceeded, reason: "provider_timeout", failedPayments: 1},

		{name: "v1 paid twice", version: "v1", gateway: "A", paidBefore: true, status: 409, code: socket.CodeAlreadyExists, reason: "already_paid"},
		{name: "v3 paid twice", version: "v3", gateway: "A", paidBefore: true, status: 409, code: socket.CodeAlreadyExists, reason: "already_paid"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.card == "" {
				c.card = cardOK
			}
			if c.quantity == 0 {
				c.quantity = 1
			}
			user := fmt.Sprintf("buyer-%d", i)
			s.newUser(t, user)
			it := s.newItem(t, price, stock)
			code := ""
			if c.usedVoucher {
				code = fmt.Sprintf("USED-%d", i)
				s.call(t, admin(), "POST", "/v1/vouchers", map[string]any{"code": code, "discount_cents": 100}).Want(t, http.StatusCreated, "")
				other := fmt.Sprintf("first-%d", i)
				s.newUser(t, other)
				first := s.newOrder(t, other, it.ID, 1, code)
				s.pay(t, "v1", as(t, other), first.ID, "A", cardOK).Want(t, http.StatusOK, "")
			}
			o := s.newOrder(t, user, it.ID, c.quantity, code)
			if c.suspended {
				u := resttest.Into[users.User](t, s.call(t, admin(), "PATCH", "/v1/users/"+user, map[string]any{"status": users.StatusSuspended}).Want(t, http.StatusOK, ""))
				if u.Status != users.StatusSuspended {
					t.Fatalf("suspended %+v", u)
				}
			}
			charges := 0
			if c.paidBefore {
				s.pay(t, c.version, as(t, user), o.ID, c.gateway, cardOK).Want(t, http.StatusOK, "")
				charges++
			}

			r := s.pay(t, c.version, as(t, user), o.ID, c.gateway, c.card).Want(t, c.status, c.code)
			if r.Reason() != c.reason {
				t.Errorf("reason %q, want %q: %s", r.Reason(), c.reason, r.Raw)
			}
			if c.code == socket.CodeNotSupported {
				d := r.Error.Details
				if d["gateway"] != c.gateway || d["version"] != c.version || !strings.Contains(r.Error.Message, c.gateway) {
					t.Errorf("NOT_SUPPORTED does not name the gateway and version: %s", r.Raw)
				}
			}
			if c.status == http.StatusOK {
				charges++
				paid := resttest.Into[orders.Order](t, r)
				if paid.ID != o.ID || paid.Status != orders.StatusPaid || paid.PaymentID == "" {
					t.Fatalf("pay answered %+v", paid)
				}
				p := resttest.Into[payments.Payment](t, s.call(t, as(t, user), "GET", "/v1/payments/"+paid.PaymentID, nil).Want(t, http.StatusOK, ""))
				if p.Status != payments.StatusSucceeded || p.AmountCents != o.TotalCents || p.Gateway != c.gateway || p.OrderID != o.ID || p.UserID != user {
					t.Fatalf("payment %+v of order %+v", p, o)
				}
			}

			wantStatus := orders.StatusPending
			if charges > 0 {
				wantStatus = orders.StatusPaid
			}
			if got := s.order(t, o.ID); got.Status != wantStatus {
				t.Errorf("order is %s, want %s", got.Status, wantStatus)
			}
			n := s.payments(t, o.ID)
			if n[payments.StatusSucceeded] != charges || n[payments.StatusFailed] != c.failedPayments || n[payments.StatusPending] != 0 {
				t.Errorf("payments of the order: %v, want %d succeeded and %d failed", n, charges, c.failedPayments)
			}
			wantStock := int64(stock)
			if c.version == "v3" {
				wantStock -= int64(charges) * c.quantity
			}
			if got := s.item(t, it.ID).Stock; got != wantStock {
				t.Errorf("stock %d, want %d", got, wantStock)
			}
		})
	}
}

// TestDeclinedThenPaid: a declined card leaves the order pending and the
// stock untouched; a good card then pays it, once.
// TestPayRetryReplays retries a purchase with its Idempotency-Key: the
// first answer comes back (not 409 already_paid), one charge; the key with
// another body is 422; no key is 400.
func TestPayRetryReplays(t *testing.T) {
	s := startStack(t, stack.Options{})
	for _, version := range []string{"v1", "v2", "v3"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			user := "retry-" + version
			s.newUser(t, user)
			it := s.newItem(t, 700, 3)
			o := s.newOrder(t, user, it.ID, 1, "")
			tok := as(t, user)
			key := []string{"Idempotency-Key", "retry-" + version + "-" + o.ID}
			first := s.pay(t, version, tok, o.ID, "A", cardOK, key...).Want(t, http.StatusOK, "")
			again := s.pay(t, version, tok, o.ID, "A", cardOK, key...).Want(t, http.StatusOK, "")
			if again.Raw != first.Raw {
				t.Fatalf("retry answered %s, want the first answer %s", again.Raw, first.Raw)
			}
			if r := s.pay(t, version, tok, o.ID, "A", "5555555555554444", key...).Want(t, http.StatusUnprocessableEntity, socket.CodeInvalidArgument); r.Reason() != "idempotency_key_reused" {
				t.Fatalf("reused key: %s", r.Raw)
			}
			r, err := s.do(tok, "POST", "/"+version+"/orders/"+o.ID+"/pay", map[string]any{"gateway": "A", "card": cardOK}, "Idempotency-Key", "")
			if err != nil {
				t.Fatal(err)
			}
			if r.Want(t, http.StatusBadRequest, socket.CodeInvalidArgument); r.Reason() != "idempotency_key_required" {
				t.Fatalf("no key: %s", r.Raw)
			}
			if n := s.payments(t, o.ID); n[payments.StatusSucceeded] != 1 || len(n) != 1 {
				t.Fatalf("payments: %v, want exactly 1 succeeded", n)
			}
		})
	}
}

func TestDeclinedThenPaid(t *testing.T) {
	s := startStack(t, stack.Options{})
	for _, version := range []string{"v1", "v2", "v3"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			user := "decline-" + version
			s.newUser(t, user)
			it := s.newItem(t, 800, 2)
			o := s.newOrder(t, user, it.ID, 2, "")
			tok := as(t, user)

			r := s.pay(t, version, tok, o.ID, "A", cardDeclined).Want(t, http.StatusPaymentRequired, socket.CodeFailedPrecondition)
			if r.Reason() != "card_declined" {
				t.Fatalf("decline: %s", r.Raw)
			}
			if got := s.order(t, o.ID); got.Status != orders.StatusPending {
				t.Fatalf("after the decline the order is %s", got.Status)
			}
			if got := s.item(t, it.ID).Stock; got != 2 {
				t.Fatalf("after the decline the stock is %d, want 2", got)
			}

			paid := resttest.Into[orders.Order](t, s.pay(t, version, tok, o.ID, "A", cardOK).Want(t, http.StatusOK, ""))
			if paid.Status != orders.StatusPaid {
				t.Fatalf("paid %+v", paid)
			}
			if n := s.payments(t, o.ID); n[payments.StatusSucceeded] != 1 || n[payments.StatusFailed] != 1 {
				t.Fatalf("payments: %v, want 1 failed, 1 succeeded", n)
			}
			want := int64(2)
			if version == "v3" {
				want = 0
			}
			if got := s.item(t, it.ID).Stock; got != want {
				t.Fatalf("stock %d, want %d", got, want)
			}
		})
	}
}

// TestUsersSeeOnlyTheirOwn: a user reads and pays only their own user and
// orders; the admin reads everyone's.
func TestUsersSeeOnlyTheirOwn(t *testing.T) {
	s := startStack(t, stack.Options{})
	s.newUser(t, "ann")
	s.newUser(t, "ben")
	it := s.newItem(t, 100, 10)
	annOrder := s.newOrder(t, "ann", it.ID, 1, "")
	benOrder := s.newOrder(t, "ben", it.ID, 1, "")
	ann, ben := as(t, "ann"), as(t, "ben")

	cases := []struct {
		name, cred, method, path string
		body                     any
		status                   int
		code                     status.Code
	}{
		{"own user", ann, "GET", "/v1/users/ann", nil, 200, ""},
		// Another user's objects answer exactly like missing ones.
		{"other user", ann, "GET", "/v1/users/ben", nil, 404, socket.CodeNotFound},
		{"other user, v3", ann, "GET", "/v3/users/ben", nil, 404, socket.CodeNotFound},
		{"update other user", ann, "PATCH", "/v1/users/ben", map[string]any{"name": "x"}, 404, socket.CodeNotFound},
		{"other's purchasable", ann, "GET", "/v1/users/ben/check_purchasable", nil, 404, socket.CodeNotFound},
		{"own purchasable", ann, "GET", "/v1/users/ann/check_purchasable", nil, 200, ""},
		{"own order", ann, "GET", "/v1/orders/" + annOrder.ID, nil, 200, ""},
		{"other's order", ann, "GET", "/v1/orders/" + benOrder.ID, nil, 404, socket.CodeNotFound},
		{"other's orders list nothing", ann, "GET", "/v1/orders?user_id=ben", nil, 200, ""},
		{"change other's order", ann, "PATCH", "/v1/orders/" + benOrder.ID, map[string]any{"voucher_code": ""}, 404, socket.CodeNotFound},
		{"delete other's order", ann, "DELETE", "/v1/orders/" + benOrder.ID, nil, 404, socket.CodeNotFound},
		{"pay other's order", ann, "POST", "/v1/orders/" + benOrder.ID + "/pay", map[string]any{"gateway": "A", "card": cardOK}, 404, socket.CodeNotFound},
		{"pay other's order, v3", ann, "POST", "/v3/orders/" + benOrder.ID + "/pay", map[string]any{"gateway": "A", "card": cardOK}, 404, socket.CodeNotFound},
		{"ben's user", ben, "GET", "/v1/users/ben", nil, 200, ""},
		{"admin reads ann", admin(), "GET", "/v1/users/ann", nil, 200, ""},
		{"admin reads ben", admin(), "GET", "/v1/users/ben", nil, 200, ""},
		{"admin reads ben's order", admin(), "GET", "/v1/orders/" + benOrder.ID, nil, 200, ""},
		{"admin lists ben's orders", admin(), "GET", "/v1/orders?user_id=ben", nil, 200, ""},
		{"anonymous user", anonymous, "GET", "/v1/users/ann", nil, 401, socket.CodeUnauthenticated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var header []string
			if strings.HasSuffix(c.path, "/pay") {
				header = []string{"Idempotency-Key", newKey()}
			}
			s.call(t, c.cred, c.method, c.path, c.body, header...).Want(t, c.status, c.code)
		})
	}

	mine := resttest.Into[orders.Page[orders.Order]](t, s.call(t, ann, "GET", "/v1/orders", nil).Want(t, http.StatusOK, ""))
	if len(mine.Items) != 1 || mine.Items[0].ID != annOrder.ID {
		t.Fatalf("ann lists %+v", mine.Items)
	}
	bens := resttest.Into[orders.Page[orders.Order]](t, s.call(t, admin(), "GET", "/v1/orders?user_id=ben", nil).Want(t, http.StatusOK, ""))
	if len(bens.Items) != 1 || bens.Items[0].ID != benOrder.ID {
		t.Fatalf("the admin lists ben's orders as %+v", bens.Items)
	}
	// Nothing ann tried changed ben's order or charged anyone.
	if got := s.order(t, benOrder.ID); got.Status != orders.StatusPending {
		t.Fatalf("ben's order is %s", got.Status)
	}
	if n := s.payments(t, benOrder.ID); len(n) != 0 {
		t.Fatalf("ben's order has payments %v", n)
	}
	if got := resttest.Into[users.User](t, s.call(t, admin(), "GET", "/v1/users/ben", nil).Want(t, http.StatusOK, "")); got.Name != "User ben" {
		t.Fatalf("ben is %+v", got)
	}
}

// TestConcurrentPaysChargeOnce: many PAYs of one order at once charge it
// once.
func TestConcurrentPaysChargeOnce(t *testing.T) {
	s := startStack(t, stack.Options{})
	const payers = 10
	for _, version := range []string{"v1", "v3"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			user := "race-" + version
			s.newUser(t, user)
			// Enough stock for every PAY's reservation at once, so that
			// under v3 the losers lose to the charge, not to stock held by
			// the others.
			const stock = 2*payers + 3
			it := s.newItem(t, 700, stock)
			o := s.newOrder(t, user, it.ID, 2, "")
			tok := as(t, user)

			replies := make([]reply, payers)
			errs := make([]error, payers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range payers {
				wg.Go(func() {
					<-start
					replies[i], errs[i] = s.tryPay(version, tok, o.ID, "A", cardOK)
				})
			}
			close(start)
			wg.Wait()

			ok := 0
			for i, r := range replies {
				switch {
				case errs[i] != nil:
					t.Error(errs[i])
				case r.Status == http.StatusOK:
					ok++
				case r.Status == http.StatusConflict && (r.Error.Code == socket.CodeAlreadyExists || r.Error.Code == socket.CodeConflict):
				default:
					t.Errorf("unexpected answer %d: %s", r.Status, r.Raw)
				}
			}
			if ok != 1 {
				t.Errorf("%d of %d PAYs succeeded, want 1", ok, payers)
			}
			if n := s.payments(t, o.ID); n[payments.StatusSucceeded] != 1 || n[payments.StatusPending] != 0 {
				t.Errorf("payments of the order: %v, want exactly 1 succeeded", n)
			}
			if got := s.order(t, o.ID); got.Status != orders.StatusPaid {
				t.Errorf("order is %s", got.Status)
			}
			want := int64(stock)
			if version == "v3" {
				want -= 2
			}
			if got := s.item(t, it.ID).Stock; got != want {
				t.Errorf("stock %d, want %d", got, want)
			}
		})
	}
}

// TestConcurrentPurchasesNeverOversell: eight buyers of an item with three
// in stock, all at once under v3: three pay, five are refused, stock ends
// at zero.
func TestConcurrentPurchasesNeverOversell(t *testing.T) {
	s := startStack(t, stack.Options{})
	const buyers, inStock = 8, 3
	it := s.newItem(t, 999, inStock)
	ids, tokens := make([]string, buyers), make([]string, buyers)
	for i := range buyers {
		user := fmt.Sprintf("rush-%d", i)
		s.newUser(t, user)
		ids[i] = s.newOrder(t, user, it.ID, 1, "").ID
		tokens[i] = as(t, user)
	}

	var paid, refused atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Go(func() {
			<-start
			r, err := s.tryPay("v3", tokens[i], ids[i], "A", cardOK)
			switch {
			case err != nil:
				t.Error(err)
			case r.Status == http.StatusOK:
				paid.Add(1)
			case r.Status == http.StatusUnprocessableEntity && r.Reason() == inventory.ReasonOutOfStock:
				refused.Add(1)
			default:
				t.Errorf("order %s: unexpected answer %d: %s", ids[i], r.Status, r.Raw)
			}
		})
	}
	close(start)
	wg.Wait()

	if paid.Load() != inStock || refused.Load() != buyers-inStock {
		t.Errorf("%d paid and %d refused, want %d and %d", paid.Load(), refused.Load(), inStock, buyers-inStock)
	}
	if got := s.item(t, it.ID).Stock; got != 0 {
		t.Errorf("stock %d, want 0", got)
	}
	paidOrders := resttest.Into[orders.Page[orders.Order]](t, s.call(t, admin(), "GET", "/v1/orders?status=paid", nil).Want(t, http.StatusOK, ""))
	if len(paidOrders.Items) != inStock {
		t.Errorf("%d paid orders, want %d", len(paidOrders.Items), inStock)
	}
	charges := resttest.Into[payments.Page](t, s.call(t, admin(), "GET", "/v1/payments?status=succeeded", nil).Want(t, http.StatusOK, ""))
	if len(charges.Items) != inStock {
		t.Errorf("%d succeeded payments, want %d", len(charges.Items), inStock)
	}
}

// TestPostgres runs a short purchase on the PostgreSQL store.
func TestPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	s := startStack(t, stack.Options{Store: run.StorePostgres, DSN: dsn})
	s.newUser(t, "pg-user")
	it := s.newItem(t, 1999, 2)
	s.call(t, admin(), "POST", "/v1/vouchers", map[string]any{"code": "PG-OFF", "discount_cents": 999}).Want(t, http.StatusCreated, "")
	o := s.newOrder(t, "pg-user", it.ID, 1, "PG-OFF")
	if o.TotalCents != 1000 {
		t.Fatalf("order total %d, want 1000", o.TotalCents)
	}
	tok := as(t, "pg-user")
	s.pay(t, "v3", tok, o.ID, "C", cardOK).Want(t, http.StatusUnprocessableEntity, socket.CodeNotSupported)
	paid := resttest.Into[orders.Order](t, s.pay(t, "v3", tok, o.ID, "B", cardOK).Want(t, http.StatusOK, ""))
	if paid.Status != orders.StatusPaid {
		t.Fatalf("paid %+v", paid)
	}
	s.pay(t, "v3", tok, o.ID, "B", cardOK).Want(t, http.StatusConflict, socket.CodeAlreadyExists)
	p := resttest.Into[payments.Payment](t, s.call(t, tok, "GET", "/v1/payments/"+paid.PaymentID, nil).Want(t, http.StatusOK, ""))
	if p.Status != payments.StatusSucceeded || p.AmountCents != 1000 {
		t.Fatalf("payment %+v", p)
	}
	if got := s.item(t, it.ID).Stock; got != 1 {
		t.Fatalf("stock %d, want 1", got)
	}
}

// TestSQLiteSurvivesRestart: what one stack wrote, the next one on the
// same data directory reads.
func TestSQLiteSurvivesRestart(t *testing.T) {
	polyglottest.GoOnly(t, "the Node and Python services have no SQLite store")
	dir := t.TempDir()
	first := startStack(t, stack.Options{Store: run.StoreSQLite, DataDir: dir})
	u := first.newUser(t, "kept")
	it := first.newItem(t, 321, 4)
	o := first.newOrder(t, "kept", it.ID, 1, "")
	first.pay(t, "v3", as(t, "kept"), o.ID, "A", cardOK).Want(t, http.StatusOK, "")
	first.stop()

	second := startStack(t, stack.Options{Store: run.StoreSQLite, DataDir: dir})
	got := resttest.Into[users.User](t, second.call(t, admin(), "GET", "/v1/users/kept", nil).Want(t, http.StatusOK, ""))
	if got.ID != u.ID || got.Email != u.Email || got.Name != u.Name {
		t.Fatalf("after the restart: %+v, want %+v", got, u)
	}
	if stock := second.item(t, it.ID).Stock; stock != 3 {
		t.Fatalf("after the restart the stock is %d, want 3", stock)
	}
	if o2 := second.order(t, o.ID); o2.Status != orders.StatusPaid {
		t.Fatalf("after the restart the order is %s", o2.Status)
	}
	second.pay(t, "v1", as(t, "kept"), o.ID, "A", cardOK).Want(t, http.StatusConflict, socket.CodeAlreadyExists)
}

// postgresDSN returns a DSN for a fresh schema in the server named by
// STREAMGATE_TEST_POSTGRES, dropped at cleanup, and skips the test when
// that is unset. (services/internal/sqldb/sqltest does this for the
// services, but internal/ keeps it out of reach of tools/.)
func postgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("STREAMGATE_TEST_POSTGRES")
	if base == "" {
		t.Skip("STREAMGATE_TEST_POSTGRES is unset: skipping the PostgreSQL test (e.g. STREAMGATE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		_ = db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestUsedVoucherChargesNothing: paying an order whose voucher another
// paid order redeemed charges nothing: BEGIN_PURCHASE holds the voucher
// before PAY, so the refusal comes before any side effect.
func TestUsedVoucherChargesNothing(t *testing.T) {
	s := startStack(t, stack.Options{})
	it := s.newItem(t, 1000, 50)
	s.call(t, admin(), "POST", "/v1/vouchers", map[string]any{"code": "ONCE", "discount_cents": 100}).Want(t, http.StatusCreated, "")
	s.newUser(t, "first")
	s.newUser(t, "second")
	first := s.newOrder(t, "first", it.ID, 1, "ONCE")
	second := s.newOrder(t, "second", it.ID, 1, "ONCE")
	s.pay(t, "v1", as(t, "first"), first.ID, "A", cardOK).Want(t, http.StatusOK, "")

	s.pay(t, "v1", as(t, "second"), second.ID, "A", cardOK).Want(t, http.StatusUnprocessableEntity, socket.CodeFailedPrecondition)
	if n := s.payments(t, second.ID); len(n) != 0 {
		t.Errorf("the refused order was charged: %v", n)
	}
}

// TestSharedVoucherConcurrentPurchases: orders sharing one voucher paid at
// once under v3 all pass CHECK_VOUCHER; exactly one is paid and every
// other charge is refunded by the payment step's undo.
func TestSharedVoucherConcurrentPurchases(t *testing.T) {
	s := startStack(t, stack.Options{})
	it := s.newItem(t, 1000, 50)
	s.call(t, admin(), "POST", "/v1/vouchers", map[string]any{"code": "SHARED", "discount_cents": 100}).Want(t, http.StatusCreated, "")
	const n = 6
	var ids []string
	for i := range n {
		user := fmt.Sprintf("buyer%d", i)
		s.newUser(t, user)
		ids = append(ids, s.newOrder(t, user, it.ID, 1, "SHARED").ID)
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.pay(t, "v3", as(t, fmt.Sprintf("buyer%d", i)), id, "A", cardOK)
		}()
	}
	wg.Wait()
	succeeded, refunded := 0, 0
	for _, id := range ids {
		p := s.payments(t, id)
		succeeded += p[payments.StatusSucceeded]
		refunded += p[payments.StatusRefunded]
	}
	if succeeded != 1 {
		t.Fatalf("%d charges kept for one voucher (refunded %d); want exactly 1", succeeded, refunded)
	}
}

// TestClientCannotCutAPurchaseShort: a purchase runs to its route's
// timeout whatever deadline the client asks for, so a client cannot stop
// it between charging and marking paid (and have the charge undone while
// the order ends up paid).
func TestClientCannotCutAPurchaseShort(t *testing.T) {
	s := startStack(t, stack.Options{})
	it := s.newItem(t, 1000, 5)
	s.newUser(t, "hasty")
	for _, v := range []string{"v1", "v3"} {
		o := s.newOrder(t, "hasty", it.ID, 1, "")
		s.pay(t, v, as(t, "hasty"), o.ID, "A", cardOK, "Timeout", "1ms").Want(t, http.StatusOK, "")
		if got := s.order(t, o.ID); got.Status != orders.StatusPaid {
			t.Fatalf("%s: order %s after a paid purchase", v, got.Status)
		}
		if n := s.payments(t, o.ID); n[payments.StatusSucceeded] != 1 || n[payments.StatusRefunded] != 0 {
			t.Fatalf("%s: payments %v", v, n)
		}
	}
}
