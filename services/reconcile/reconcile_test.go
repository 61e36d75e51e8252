package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/reconcile"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	cardOK   = "4242424242424242"
	cardLost = "4000000000000259" // charged, answer lost
	// serviceKey is the key the reconciler presents: it may name a
	// principal, and has no role of its own.
	serviceKey = "reconcile-test-key"
)

// env is the payments service (real sandbox gateways A and B) and the
// orders service, each with a real store on its own socket behind a key
// without roles.
type env struct {
	t         *testing.T
	ctx       context.Context
	st        payments.Store
	pay       *caller.Client
	orders    *caller.Client
	sandboxes map[string]*payments.Sandbox
	providers map[string]payments.Provider
	names     map[string]string // order id → the test's name for it
	// inventory serves items (widget, in stock initialStock) from items.
	inventory *caller.Client
	items     inventory.Store
}

// initialStock is how many widgets the inventory starts with.
const initialStock = 1000

// price is every item's price: an order of n items costs n × price.
const price = 100

func newEnv(t *testing.T, st payments.Store, ost orders.Store) *env {
	t.Helper()
	e := &env{t: t, st: st, sandboxes: map[string]*payments.Sandbox{}, providers: map[string]payments.Provider{}, names: map[string]string{}}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	for _, name := range []string{"A", "B"} {
		sb := payments.NewSandbox(name, time.Millisecond)
		url, err := sb.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sb.Close)
		e.sandboxes[name], e.providers[name] = sb, payments.NewHTTPProvider(url, 200*time.Millisecond, &http.Client{Transport: tr})
	}
	server := func(name string) *socket.Server {
		keys, err := keyring.New(keyring.Key{Name: "ops", Secret: serviceKey, Delegate: true})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := socket.NewServer(socket.Config{Name: name}, socket.WithKeys(keys))
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	psrv, osrv, isrv := server("payments"), server("orders"), server("inventory")
	e.items = inventory.NewMemoryStore()
	if err := e.items.Create(context.Background(), inventory.Item{ID: "widget", Name: "Widget", PriceCents: price, Stock: initialStock}); err != nil {
		t.Fatal(err)
	}
	if err := inventory.Register(isrv, e.items); err != nil {
		t.Fatal(err)
	}
	e.inventory = sockettest.Start(t, isrv, caller.WithKey(serviceKey))
	if err := payments.Register(psrv, st, e.providers); err != nil {
		t.Fatal(err)
	}
	prices := orders.PricerFunc(func(_ context.Context, ids []string) (map[string]int64, error) {
		m := map[string]int64{}
		for _, id := range ids {
			m[id] = price
		}
		return m, nil
	})
	if err := orders.Register(osrv, ost, prices, orders.WithPurchaseLease(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.pay = sockettest.Start(t, psrv, caller.WithKey(serviceKey))
	e.orders = sockettest.Start(t, osrv, caller.WithKey(serviceKey))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	e.ctx = ctx
	return e
}

// alice is the shop's customer; key is the request's Idempotency-Key.
func (e *env) alice(key string) context.Context {
	return caller.ContextWithMeta(e.ctx, socket.Meta{APIVersion: "v2", Principal: socket.Principal{Subject: "alice"}, IdempotencyKey: key})
}

// order creates alice's order of n items, named name in reports.
func (e *env) order(name string, n int64) orders.Order {
	e.t.Helper()
	o, err := caller.Call[orders.Order](e.alice(""), e.orders, "CREATE_ORDER", "", orders.CreateOrderInput{Lines: []orders.Line{{ItemID: "widget", Quantity: n}}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.names[o.ID] = name
	return o
}

// paying creates an order of n items and begins its purchase.
func (e *env) paying(name string, n int64) orders.Order {
	e.t.Helper()
	o := e.order(name, n)
	o, err := caller.Call[orders.Order](e.alice("pur_"+name), e.orders, "BEGIN_PURCHASE", o.ID, nil)
	if err != nil || o.Status != orders.StatusPaying {
		e.t.Fatalf("BEGIN_PURCHASE: %+v %v", o, err)
	}
	return o
}

func (e *env) markPaid(o orders.Order, paymentID string) {
	e.t.Helper()
	in := orders.MarkPaidInput{PaymentID: paymentID, AmountCents: o.TotalCents, Version: o.Version, PurchaseID: o.PurchaseID}
	if _, err := caller.Call[orders.Order](e.alice(""), e.orders, "MARK_PAID", o.ID, in); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) getOrder(id string) orders.Order {
	e.t.Helper()
	o, err := caller.Call[orders.Order](e.alice(""), e.orders, "GET_ORDER", id, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

// payAsAlice pays an order through the payments service as its owner.
func (e *env) payAsAlice(order string, amount int64, gateway, card string) (payments.Payment, error) {
	return caller.Call[payments.Payment](e.alice(""), e.pay, "PAY", "", payments.PayInput{OrderID: order, AmountCents: amount, Gateway: gateway, Card: card})
}

// crashed records a payment pending since an hour ago, as a process that
// stopped before the gateway's answer leaves it; charged says whether the
// charge reached the gateway (its answer lost).
func (e *env) crashed(id, order string, amount int64, charged bool) {
	e.t.Helper()
	p := payments.Payment{ID: id, OrderID: order, UserID: "alice", AmountCents: amount, Gateway: "B", Status: payments.StatusPending,
		CardLast4: "0259", CreatedAt: time.Unix(time.Now().Add(-time.Hour).Unix(), 0).UTC()}
	if err := e.st.Create(e.ctx, p); err != nil {
		e.t.Fatal(err)
	}
	if !charged {
		return
	}
	if _, err := e.providers["B"].Charge(e.ctx, payments.Charge{AmountCents: amount, Card: cardLost, Reference: id}); !errors.Is(err, context.DeadlineExceeded) {
		e.t.Fatalf("lost charge: %v", err)
	}
}

func (e *env) reconcile(o reconcile.Options) reconcile.Report {
	e.t.Helper()
	o.Orders, o.Payments, o.Inventory = e.orders, e.pay, e.inventory
	rep, err := reconcile.Run(e.ctx, o)
	if err != nil {
		e.t.Fatalf("reconcile: %v (%+v)", err, rep)
	}
	return rep
}

// wantEntries compares a report's entries, as "kind action order reason"
// with the orders' (and reservations') test names, with want.
func (e *env) wantEntries(rep reconcile.Report, want ...string) {
	e.t.Helper()
	got := []string{}
	for _, en := range rep.Entries {
		key := en.OrderID
		if en.Kind == reconcile.KindReservation {
			key = en.ReservationID
		}
		name, ok := e.names[key]
		if !ok {
			name = key
		}
		got = append(got, fmt.Sprintf("%s %s %s %s", en.Kind, en.Action, name, en.Reason))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		e.t.Fatalf("entries:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	n := 0
	for _, c := range rep.Counts {
		n += c
	}
	if n != len(rep.Entries) {
		e.t.Fatalf("counts %v for %d entries", rep.Counts, len(rep.Entries))
	}
}

// TestReconcile leaves the money in every state faults leave it in and
// reconciles it, once per store: a dry run changes nothing, a run settles
// everything not in flight, a run after the leases ran out settles the
// rest, and then nothing is left.
func TestReconcile(t *testing.T) {
	t.Parallel()
	stores := []struct {
		name string
		open func(t *testing.T) (payments.Store, orders.Store)
	}{
		{"memory", func(*testing.T) (payments.Store, orders.Store) {
			return payments.NewMemoryStore(), orders.NewMemoryStore()
		}},
		{"sqlite", func(t *testing.T) (payments.Store, orders.Store) {
			pst, err := payments.NewSQLStore(context.Background(), sqltest.SQLite(t))
			if err != nil {
				t.Fatal(err)
			}
			ost, err := orders.NewSQLStore(context.Background(), sqltest.SQLite(t))
			if err != nil {
				t.Fatal(err)
			}
			return pst, ost
		}},
	}
	for _, kind := range stores {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			pst, ost := kind.open(t)
			e := newEnv(t, pst, ost)

			// The gateway charged, its answer was lost, PAY failed: the
			// money goes back; once the lease runs out the order is
			// released.
			lost := e.paying("lost", 15)
			if _, err := e.payAsAlice(lost.ID, lost.TotalCents, "A", cardLost); status.CodeOf(err) != socket.CodeDeadlineExceeded {
				t.Fatalf("lost answer: %v", err)
			}
			// The process stopped after the charge went out; the order is
			// still paying for that amount: paid once the lease runs out.
			crash := e.paying("crash", 25)
			e.crashed("pay_crash", crash.ID, crash.TotalCents, true)
			// The process stopped before the charge went out.
			none := e.order("none", 3)
			e.crashed("pay_none", none.ID, none.TotalCents, false)
			// Charges no order can take: the order went back to pending,
			// was paid by another payment, is gone, or costs something
			// else.
			pending := e.order("pending", 7)
			other := e.paying("other", 4)
			e.markPaid(other, "pay_elsewhere")
			amount := e.paying("amount", 10)
			for _, p := range []struct {
				order  string
				amount int64
			}{{pending.ID, pending.TotalCents}, {other.ID, other.TotalCents}, {"ord_gone", 800}, {amount.ID, amount.TotalCents - 1}} {
				if _, err := e.payAsAlice(p.order, p.amount, "A", cardOK); err != nil {
					t.Fatal(err)
				}
			}
			// A paid order and its payment: nothing to do.
			paid := e.paying("paid", 6)
			p, err := e.payAsAlice(paid.ID, paid.TotalCents, "B", cardOK)
			if err != nil {
				t.Fatal(err)
			}
			e.markPaid(paid, p.ID)
			// A purchase stuck paying without a payment.
			e.paying("stuck", 2)

			now := []string{
				"payment refunded lost provider_timeout",
				"payment charged crash pending",
				"payment not_charged none pending",
				"charge refunded pending order_pending",
				"charge refunded other paid_by_other_payment",
				"charge refunded ord_gone order_gone",
			}
			// A dry run reports what a run would do and changes nothing.
			taken := e.taken()
			dry := e.reconcile(reconcile.Options{DryRun: true, OlderThan: time.Millisecond})
			e.wantEntries(dry, now...)
			if !dry.DryRun || !strings.Contains(dry.Summary(), "dry run") {
				t.Fatalf("the dry run's report does not say so: %+v", dry)
			}
			if fmt.Sprint(e.taken()) != fmt.Sprint(taken) || e.getOrder(crash.ID).Status != orders.StatusPaying {
				t.Fatal("the dry run changed something")
			}

			// While the leases run, the purchases are left alone.
			rep := e.reconcile(reconcile.Options{OlderThan: time.Millisecond})
			e.wantEntries(rep, now...)
			if rep.InFlight != 4 { // lost, crash, amount, stuck
				t.Fatalf("%d in flight, want 4", rep.InFlight)
			}
			if o := e.getOrder(crash.ID); o.Status != orders.StatusPaying {
				t.Fatalf("crash was settled under a live lease: %+v", o)
			}

			// Two hours later the leases have run out.
			later := func() time.Time { return time.Now().Add(2 * time.Hour) }
			rep = e.reconcile(reconcile.Options{Now: later})
			e.wantEntries(rep,
				"charge marked_paid crash lease_expired",
				"charge refunded amount amount_mismatch",
				"purchase released amount lease_expired",
				"purchase released lost lease_expired",
				"purchase released stuck lease_expired",
			)
			if o := e.getOrder(crash.ID); o.Status != orders.StatusPaid || o.PaymentID != "pay_crash" {
				t.Fatalf("crash: %+v", o)
			}
			for _, id := range []string{lost.ID, amount.ID} {
				if o := e.getOrder(id); o.Status != orders.StatusPending {
					t.Fatalf("%s: %+v", e.names[id], o)
				}
			}
			rep = e.reconcile(reconcile.Options{Now: later})
			e.wantEntries(rep)
			if rep.InFlight != 0 || rep.Summary() != "nothing to settle (0 in flight)" {
				t.Fatalf("second run: %+v %q", rep, rep.Summary())
			}
			e.moneyMatches()
		})
	}
}

// taken is the money the sandboxes hold, by reference.
func (e *env) taken() map[string]int64 {
	m := map[string]int64{}
	for _, sb := range e.sandboxes {
		for ref, amount := range sb.Taken() {
			m[ref] = amount
		}
	}
	return m
}

// moneyMatches fails unless the charges the gateways hold are exactly the
// succeeded payments, each of which paid its order.
func (e *env) moneyMatches() {
	e.t.Helper()
	taken := e.taken()
	succeeded, err := e.st.List(e.ctx, payments.Filter{Status: payments.StatusSucceeded})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(succeeded) != len(taken) {
		e.t.Fatalf("%d succeeded payments, the gateways hold %v", len(succeeded), taken)
	}
	for _, p := range succeeded {
		o := e.getOrder(p.OrderID)
		if taken[p.ID] != p.AmountCents || o.Status != orders.StatusPaid || o.PaymentID != p.ID || o.TotalCents != p.AmountCents {
			e.t.Fatalf("payment %+v: gateway holds %d, order %+v", p, taken[p.ID], o)
		}
	}
}

// The run acts as an admin whatever the key's own roles: a key that may
// not name a principal cannot reconcile.
func TestReconcileNeedsADelegatingKey(t *testing.T) {
	t.Parallel()
	keys, err := keyring.New(keyring.Key{Name: "plain", Secret: "plain-key", Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := socket.NewServer(socket.Config{Name: "payments"}, socket.WithKeys(keys))
	if err != nil {
		t.Fatal(err)
	}
	if err := payments.Register(srv, payments.NewMemoryStore(), nil); err != nil {
		t.Fatal(err)
	}
	c := sockettest.Start(t, srv, caller.WithKey("plain-key"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = reconcile.Run(ctx, reconcile.Options{Orders: c, Payments: c})
	if status.CodeOf(err) != socket.CodePermissionDenied {
		t.Fatalf("got %v, want PERMISSION_DENIED", err)
	}
	if _, err := reconcile.Run(ctx, reconcile.Options{Payments: c}); err == nil {
		t.Fatal("no orders client accepted")
	}
}

// Runs racing each other settle everything once: the money ends exact and
// a run after them finds nothing.
func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	pst, err := payments.NewSQLStore(context.Background(), sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, pst, orders.NewMemoryStore())
	for i := range 4 {
		lost := e.paying(fmt.Sprintf("lost%d", i), int64(10+i))
		if _, err := e.payAsAlice(lost.ID, lost.TotalCents, "A", cardLost); status.CodeOf(err) != socket.CodeDeadlineExceeded {
			t.Fatalf("lost answer: %v", err)
		}
		crash := e.paying(fmt.Sprintf("crash%d", i), int64(20+i))
		e.crashed(fmt.Sprintf("pay_crash%d", i), crash.ID, crash.TotalCents, true)
		if _, err := e.payAsAlice(fmt.Sprintf("ord_gone%d", i), 100, "B", cardOK); err != nil {
			t.Fatal(err)
		}
		e.reserve(e.paying(fmt.Sprintf("stuck%d", i), 2))
	}
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	const runs = 4
	reports := make(chan reconcile.Report, runs)
	errs := make(chan error, runs)
	for range runs {
		go func() {
			rep, err := reconcile.Run(e.ctx, reconcile.Options{Orders: e.orders, Payments: e.pay, Inventory: e.inventory, Now: later})
			reports <- rep
			errs <- err
		}()
	}
	settled := map[string]int{}
	for range runs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		for _, en := range (<-reports).Entries {
			settled[en.Kind+" "+en.Action+" "+e.names[en.OrderID]+en.PaymentID+en.ReservationID]++
		}
	}
	for thing, n := range settled {
		// Marking paid is idempotent, so racing runs may each see it done.
		if n != 1 && !strings.Contains(thing, reconcile.ActionMarkedPaid) {
			t.Errorf("%s settled %d times", thing, n)
		}
	}
	// Each round: lost refunded and released, crash charged and marked
	// paid, gone refunded, stuck released and its stock too.
	if len(settled) != 4*7 {
		t.Errorf("%d things settled, want %d: %v", len(settled), 4*7, settled)
	}
	if got := e.stock(); got != initialStock {
		t.Errorf("stock %d, want %d", got, initialStock)
	}
	e.wantEntries(e.reconcile(reconcile.Options{Now: later}))
	e.moneyMatches()
	for _, sb := range e.sandboxes {
		if sb.Refunds() != 4 {
			t.Errorf("%d refunds at a gateway, want 4", sb.Refunds())
		}
	}
}
