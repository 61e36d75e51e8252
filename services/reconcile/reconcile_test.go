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
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/reconcile"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	cardOK   = "4242424242424242"
	cardLost = "4000000000000259" // charged, answer lost
	// serviceKey is the key the reconciler presents: it may name a
	// principal, and has no role of its own.
	serviceKey = "reconcile-test-key"
)

// env is the payments service (real sandbox gateways A and B, a real
// store) and an orders service holding to the purchase contract, each on
// its own socket behind a key without roles.
type env struct {
	t         *testing.T
	ctx       context.Context
	st        payments.Store
	pay       *socket.Client
	orders    *socket.Client
	shop      *contractOrders
	sandboxes map[string]*payments.Sandbox
	providers map[string]payments.Provider
}

func newEnv(t *testing.T, st payments.Store) *env {
	t.Helper()
	e := &env{t: t, st: st, shop: newContractOrders(), sandboxes: map[string]*payments.Sandbox{}, providers: map[string]payments.Provider{}}
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
		keys, err := socket.NewKeyring(socket.Key{Name: "ops", Secret: serviceKey, Delegate: true})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := socket.NewServer(socket.Config{Name: name}, socket.WithKeys(keys))
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	psrv, osrv := server("payments"), server("orders")
	if err := payments.Register(psrv, st, e.providers); err != nil {
		t.Fatal(err)
	}
	if err := e.shop.register(osrv); err != nil {
		t.Fatal(err)
	}
	e.pay = sockettest.Start(t, psrv, socket.WithKey(serviceKey))
	e.orders = sockettest.Start(t, osrv, socket.WithKey(serviceKey))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	e.ctx = ctx
	return e
}

// payAsAlice pays an order through the payments service as its owner.
func (e *env) payAsAlice(order string, amount int64, gateway, card string) (payments.Payment, error) {
	ctx := socket.ContextWithMeta(e.ctx, socket.Meta{APIVersion: "v2", Principal: socket.Principal{Subject: "alice"}})
	return socket.Call[payments.Payment](ctx, e.pay, "PAY", "", payments.PayInput{OrderID: order, AmountCents: amount, Gateway: gateway, Card: card})
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
	o.Orders, o.Payments = e.orders, e.pay
	rep, err := reconcile.Run(e.ctx, o)
	if err != nil {
		e.t.Fatalf("reconcile: %v (%+v)", err, rep)
	}
	return rep
}

// entries renders a report's entries as "kind action order reason",
// sorted.
func entries(rep reconcile.Report) []string {
	out := []string{}
	for _, en := range rep.Entries {
		out = append(out, fmt.Sprintf("%s %s %s %s", en.Kind, en.Action, en.OrderID, en.Reason))
	}
	slices.Sort(out)
	return out
}

func wantEntries(t *testing.T, rep reconcile.Report, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := entries(rep); !slices.Equal(got, want) {
		t.Fatalf("entries:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	n := 0
	for _, c := range rep.Counts {
		n += c
	}
	if n != len(rep.Entries) {
		t.Fatalf("counts %v for %d entries", rep.Counts, len(rep.Entries))
	}
}

// TestReconcile leaves the money in every state faults leave it in and
// reconciles it, once per store: a dry run changes nothing, a run settles
// everything not in flight, a later run settles what was in flight, and
// then nothing is left.
func TestReconcile(t *testing.T) {
	t.Parallel()
	stores := []struct {
		name string
		open func(t *testing.T) payments.Store
	}{
		{"memory", func(*testing.T) payments.Store { return payments.NewMemoryStore() }},
		{"sqlite", func(t *testing.T) payments.Store {
			st, err := payments.NewSQLStore(context.Background(), sqltest.SQLite(t))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
	}
	for _, kind := range stores {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, kind.open(t))
			expired, live := lease(-time.Minute), lease(time.Hour)
			paying := func(id string, total int64, lease string) Order {
				return Order{ID: id, UserID: "alice", TotalCents: total, Status: "paying", Version: 3, PurchaseID: "pur_" + id, LeaseExpiresAt: lease}
			}

			// The gateway charged, its answer was lost, PAY failed; the
			// purchase's lease ran out: the money goes back, the order is
			// released.
			e.shop.put(paying("ord_lost", 1500, expired))
			if _, err := e.payAsAlice("ord_lost", 1500, "A", cardLost); socket.CodeOf(err) != socket.CodeDeadlineExceeded {
				t.Fatalf("lost answer: %v", err)
			}
			// The process stopped after the charge went out: the order is
			// still paying, its lease ran out, the amount matches.
			e.shop.put(paying("ord_crash", 2500, expired))
			e.crashed("pay_crash", "ord_crash", 2500, true)
			// Same, but the lease still runs: left to the purchase.
			e.shop.put(paying("ord_live", 900, live))
			e.crashed("pay_live", "ord_live", 900, true)
			// The process stopped before the charge went out.
			e.shop.put(Order{ID: "ord_none", UserID: "alice", TotalCents: 300, Status: "pending", Version: 1})
			e.crashed("pay_none", "ord_none", 300, false)
			// Charges the orders cannot take: the order went back to
			// pending, was paid by another payment, is gone, or costs
			// something else.
			e.shop.put(Order{ID: "ord_pending", UserID: "alice", TotalCents: 700, Status: "pending", Version: 5})
			e.shop.put(Order{ID: "ord_other", UserID: "alice", TotalCents: 400, Status: "paid", PaymentID: "pay_someone_else", Version: 6})
			e.shop.put(paying("ord_amount", 1000, expired))
			for _, p := range []struct {
				order  string
				amount int64
			}{{"ord_pending", 700}, {"ord_other", 400}, {"ord_gone", 800}, {"ord_amount", 999}} {
				if _, err := e.payAsAlice(p.order, p.amount, "A", cardOK); err != nil {
					t.Fatal(err)
				}
			}
			// A paid order and its payment: nothing to do.
			paid, err := e.payAsAlice("ord_paid", 600, "B", cardOK)
			if err != nil {
				t.Fatal(err)
			}
			e.shop.put(Order{ID: "ord_paid", UserID: "alice", TotalCents: 600, Status: "paid", PaymentID: paid.ID, Version: 4})
			// Purchases stuck paying with no payment.
			e.shop.put(paying("ord_stuck", 200, expired))
			e.shop.put(paying("ord_stuck_live", 200, live))

			want := []string{
				"payment refunded ord_lost provider_timeout",
				"purchase released ord_lost lease_expired",
				"payment charged ord_crash pending",
				"charge marked_paid ord_crash lease_expired",
				"payment charged ord_live pending",
				"payment not_charged ord_none pending",
				"charge refunded ord_pending order_pending",
				"charge refunded ord_other paid_by_other_payment",
				"charge refunded ord_gone order_gone",
				"charge refunded ord_amount amount_mismatch",
				"purchase released ord_amount lease_expired",
				"purchase released ord_stuck lease_expired",
			}
			// A dry run reports the same and changes nothing, except what
			// hangs on changes it does not make: ord_crash's payment stays
			// pending (so its purchase is not settled), ord_amount's stays
			// succeeded (so its purchase is not released).
			orders, taken := e.shop.snapshot(), e.taken()
			dry := e.reconcile(reconcile.Options{DryRun: true, OlderThan: time.Millisecond})
			if !dry.DryRun {
				t.Fatal("the dry run's report does not say so")
			}
			wantEntries(t, dry, slices.DeleteFunc(slices.Clone(want), func(s string) bool {
				return s == "charge marked_paid ord_crash lease_expired" || s == "purchase released ord_amount lease_expired"
			})...)
			if fmt.Sprint(e.shop.snapshot()) != fmt.Sprint(orders) || fmt.Sprint(e.taken()) != fmt.Sprint(taken) {
				t.Fatal("the dry run changed something")
			}

			rep := e.reconcile(reconcile.Options{OlderThan: time.Millisecond})
			wantEntries(t, rep, want...)
			// In flight: ord_live's payment and ord_stuck_live.
			if rep.InFlight != 2 {
				t.Fatalf("%d in flight, want 2", rep.InFlight)
			}
			if o := e.shop.get("ord_crash"); o.Status != "paid" || o.PaymentID != "pay_crash" {
				t.Fatalf("ord_crash: %+v", o)
			}
			for _, id := range []string{"ord_lost", "ord_amount", "ord_stuck"} {
				if o := e.shop.get(id); o.Status != "pending" {
					t.Fatalf("%s: %+v", id, o)
				}
			}
			if o := e.shop.get("ord_live"); o.Status != "paying" {
				t.Fatalf("ord_live was settled under a live lease: %+v", o)
			}

			// An hour later the live leases have run out.
			later := func() time.Time { return time.Now().Add(2 * time.Hour) }
			rep = e.reconcile(reconcile.Options{Now: later})
			wantEntries(t, rep, "charge marked_paid ord_live lease_expired", "purchase released ord_stuck_live lease_expired")
			rep = e.reconcile(reconcile.Options{Now: later})
			wantEntries(t, rep)
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

// moneyMatches fails unless every charge the gateways hold is a succeeded
// payment that paid its order, and every paid order's payment is such a
// charge.
func (e *env) moneyMatches() {
	e.t.Helper()
	taken := e.taken()
	paidBy := map[string]Order{}
	for _, o := range e.shop.snapshot() {
		if o.Status == "paid" {
			paidBy[o.PaymentID] = o
		}
	}
	succeeded, err := e.st.List(e.ctx, payments.Filter{Status: payments.StatusSucceeded})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(succeeded) != len(taken) {
		e.t.Fatalf("%d succeeded payments, the gateways hold %v", len(succeeded), taken)
	}
	for _, p := range succeeded {
		o, ok := paidBy[p.ID]
		if taken[p.ID] != p.AmountCents || !ok || o.ID != p.OrderID || o.TotalCents != p.AmountCents {
			e.t.Fatalf("payment %+v: gateway holds %d, order %+v", p, taken[p.ID], o)
		}
	}
	for id, o := range paidBy {
		if _, ok := taken[id]; !ok && o.ID != "ord_other" {
			e.t.Fatalf("order %+v is paid with money no gateway holds", o)
		}
	}
}

// The run acts as an admin whatever the key's own roles: a key that may
// not name a principal cannot reconcile.
func TestReconcileNeedsADelegatingKey(t *testing.T) {
	t.Parallel()
	keys, err := socket.NewKeyring(socket.Key{Name: "plain", Secret: "plain-key", Roles: []string{"admin"}})
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
	c := sockettest.Start(t, srv, socket.WithKey("plain-key"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = reconcile.Run(ctx, reconcile.Options{Orders: c, Payments: c})
	if socket.CodeOf(err) != socket.CodePermissionDenied {
		t.Fatalf("got %v, want PERMISSION_DENIED", err)
	}
	if _, err := reconcile.Run(ctx, reconcile.Options{Payments: c}); err == nil {
		t.Fatal("no orders client accepted")
	}
}
