package reconcile_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/reconcile"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// reserve reserves the stock of a paying order under its purchase, as the
// v3 pipeline does, and names the reservation as the order.
func (e *env) reserve(o orders.Order) inventory.Reservation {
	e.t.Helper()
	res, err := caller.Call[inventory.Reservation](e.alice(""), e.inventory, "RESERVE_STOCK", o.PurchaseID, map[string]any{"order": o})
	if err != nil {
		e.t.Fatalf("RESERVE_STOCK %s: %v", o.PurchaseID, err)
	}
	e.names[o.PurchaseID] = e.names[o.ID]
	return res
}

// abort aborts an order's purchase, as a pipeline's undo does.
func (e *env) abort(o orders.Order) {
	e.t.Helper()
	res, err := caller.Call[orders.AbortResult](e.alice(""), e.orders, "ABORT_PURCHASE", o.ID, orders.AbortPurchaseInput{PurchaseID: o.PurchaseID})
	if err != nil || !res.Aborted {
		e.t.Fatalf("ABORT_PURCHASE: %+v %v", res, err)
	}
}

// stock is how many widgets are in stock.
func (e *env) stock() int64 {
	e.t.Helper()
	it, err := e.items.Get(e.ctx, "widget")
	if err != nil {
		e.t.Fatal(err)
	}
	return it.Stock
}

func (e *env) reservation(id string) inventory.Reservation {
	e.t.Helper()
	r, err := e.items.GetReservation(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// TestReconcileReleasesAbandonedStock holds stock for purchases in every
// state and reconciles: only the reservations of purchases that will
// never be paid are released, each once; the stock ends at the initial
// stock less what paid orders took.
func TestReconcileReleasesAbandonedStock(t *testing.T) {
	t.Parallel()
	for _, kind := range []struct {
		name string
		open func(t *testing.T) orders.Store
	}{
		{"memory", func(*testing.T) orders.Store { return orders.NewMemoryStore() }},
		{"sqlite", func(t *testing.T) orders.Store {
			st, err := orders.NewSQLStore(context.Background(), sqltest.SQLite(t))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, payments.NewMemoryStore(), kind.open(t))
			// Sold: paid under its purchase.
			sold := e.paying("sold", 3)
			e.reserve(sold)
			e.markPaid(sold, "pay_sold")
			// Abandoned: its pipeline's undo aborted the purchase but never
			// released the stock (the gateway died in between).
			abandoned := e.paying("abandoned", 4)
			e.reserve(abandoned)
			e.abort(abandoned)
			// Stuck: the gateway died while paying; the lease runs out and
			// this run releases the purchase, then its stock.
			stuck := e.paying("stuck", 5)
			e.reserve(stuck)
			// Superseded: its first purchase was abandoned, a second one paid.
			first := e.paying("superseded", 6)
			e.reserve(first)
			e.abort(first)
			o, err := caller.Call[orders.Order](e.alice("pur_second"), e.orders, "BEGIN_PURCHASE", first.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			e.reserve(o)
			e.names[o.PurchaseID] = "second"
			e.markPaid(o, "pay_second")
			// Orphan: its order is gone.
			orphan := e.paying("orphan", 7)
			e.reserve(orphan)
			e.abort(orphan)
			if _, err := caller.Call[orders.Order](e.alice(""), e.orders, "DELETE_ORDER", orphan.ID, nil); err != nil {
				t.Fatal(err)
			}
			// Running: paying under a live lease.
			running := e.paying("running", 8)
			e.reserve(running)
			sold3 := int64(3 + 6) // sold and second
			if got, want := e.stock(), int64(initialStock-3-4-5-6-6-7-8); got != want {
				t.Fatalf("stock %d, want %d", got, want)
			}

			now := []string{
				"reservation released_stock abandoned purchase_abandoned",
				"reservation released_stock superseded purchase_abandoned",
				"reservation released_stock orphan purchase_abandoned",
			}
			dry := e.reconcile(reconcile.Options{DryRun: true})
			e.wantEntries(dry, now...)
			if got, want := e.stock(), int64(initialStock-3-4-5-6-6-7-8); got != want {
				t.Fatalf("the dry run changed the stock: %d, want %d", got, want)
			}
			rep := e.reconcile(reconcile.Options{})
			e.wantEntries(rep, now...)
			if rep.InFlight != 2 { // stuck, running
				t.Fatalf("%d in flight, want 2: %+v", rep.InFlight, rep)
			}
			if got, want := e.stock(), int64(initialStock-3-5-6-8); got != want {
				t.Fatalf("stock %d, want %d", got, want)
			}

			// Two hours later: the leases ran out; stuck and running are
			// released, purchases and stock. A dry run says so too.
			later := func() time.Time { return time.Now().Add(2 * time.Hour) }
			want := []string{
				"purchase released stuck lease_expired",
				"purchase released running lease_expired",
				"reservation released_stock stuck purchase_abandoned",
				"reservation released_stock running purchase_abandoned",
			}
			e.wantEntries(e.reconcile(reconcile.Options{Now: later, DryRun: true}), want...)
			rep = e.reconcile(reconcile.Options{Now: later})
			e.wantEntries(rep, want...)
			if !strings.Contains(rep.Summary(), "released_stock 2") {
				t.Fatalf("summary %q", rep.Summary())
			}
			for _, en := range rep.Entries {
				if en.Kind == reconcile.KindReservation && (len(en.Lines) != 1 || en.Lines[0].ItemID != "widget" || !strings.Contains(en.String(), "released_stock reservation pur_")) {
					t.Fatalf("entry %+v: %s", en, en)
				}
			}
			if got := e.stock(); got != initialStock-sold3 {
				t.Fatalf("stock %d, want %d (initial less the paid %d)", got, initialStock-sold3, sold3)
			}
			if r := e.reservation(sold.PurchaseID); r.Status != inventory.ReservationHeld {
				t.Fatalf("the sold reservation: %+v", r)
			}
			e.wantEntries(e.reconcile(reconcile.Options{Now: later}))
		})
	}
}

// hookedOrders is an orders store that calls afterPaid once, after the
// first listing of paid orders has been read and before it is answered.
type hookedOrders struct {
	orders.Store
	once      sync.Once
	afterPaid func()
}

func (h *hookedOrders) ListOrders(ctx context.Context, q orders.OrderQuery) ([]orders.Order, error) {
	out, err := h.Store.ListOrders(ctx, q)
	if q.Status == orders.StatusPaid {
		h.once.Do(h.afterPaid)
	}
	return out, err
}

// TestReconcileLeavesTheStockOfARetriedPurchase: a purchase was abandoned
// with its stock held; between the run's reading of the orders and its
// release of the stock, the client retries with its key: the purchase
// begins again, reserves its id again (a replay) and is paid. The run
// must not release that stock: its release, a compare-and-set on the
// version it read, is refused, and the stock stays sold.
func TestReconcileLeavesTheStockOfARetriedPurchase(t *testing.T) {
	t.Parallel()
	h := &hookedOrders{Store: orders.NewMemoryStore()}
	e := newEnv(t, payments.NewMemoryStore(), h)
	o := e.paying("retried", 4)
	e.reserve(o)
	e.abort(o)
	var retried orders.Order
	h.afterPaid = func() {
		// The retry, as the pipeline runs it with the same key.
		var err error
		retried, err = caller.Call[orders.Order](e.alice("pur_retried"), e.orders, "BEGIN_PURCHASE", o.ID, nil)
		if err != nil || retried.PurchaseID != o.PurchaseID {
			t.Errorf("BEGIN_PURCHASE again: %+v %v", retried, err)
			return
		}
		if res := e.reserve(retried); res.Status != inventory.ReservationHeld || res.Version != 2 {
			t.Errorf("RESERVE_STOCK again: %+v", res)
		}
	}
	rep := e.reconcile(reconcile.Options{})
	e.wantEntries(rep)
	e.markPaid(retried, "pay_retried")
	if r := e.reservation(o.PurchaseID); r.Status != inventory.ReservationHeld {
		t.Fatalf("the paid purchase's reservation: %+v", r)
	}
	if got := e.stock(); got != initialStock-4 {
		t.Fatalf("stock %d, want %d: the paid purchase's stock was released", got, initialStock-4)
	}
	// The next run sees it sold.
	e.wantEntries(e.reconcile(reconcile.Options{}))
}
