package orders_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// clock is a settable clock for leases; safe for concurrent use.
type clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// startWithClock serves orders over st with a lease of one minute
// measured on the returned clock.
func startWithClock(t *testing.T, st orders.Store) (*socketcaller.Client, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	srv, err := socket.NewServer(socket.Config{Name: "orders"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := orders.Register(srv, st, catalogue, orders.WithPurchaseLease(time.Minute), orders.WithClock(clk.Now)); err != nil {
		t.Fatal(err)
	}
	return sockettest.Start(t, srv), clk
}

// withKey is ctx's caller sending an Idempotency-Key.
func withKey(ctx context.Context, key string) context.Context {
	m := socket.MetaFrom(ctx)
	m.IdempotencyKey = key
	return socketcaller.ContextWithMeta(ctx, m)
}

// TestEditRacingPurchase is the reported defect: an order for 1 apple is
// being paid while its owner changes it to 100. Whatever the interleaving,
// the order never ends paid for another total than the one MARK_PAID was
// told (the amount charged): either the edit gets CONFLICT or MARK_PAID
// does.
func TestEditRacingPurchase(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		alice := sockettest.As(t, "v1", "alice")
		for round := range 20 {
			o := mustOrder(t, c, "alice", "", orders.Line{ItemID: "apple", Quantity: 1})
			var charged int64
			errs := race(2, func(i int) error {
				if i == 1 {
					_, err := c.Request(alice, "UPDATE_ORDER", o.ID, raw(`{"lines": [{"item_id": "apple", "quantity": 100}]}`))
					return err
				}
				snap, err := socketcaller.Call[orders.Order](alice, c, "BEGIN_PURCHASE", o.ID, nil)
				if err != nil {
					return err
				}
				charged = snap.TotalCents // what PAY would charge
				_, err = c.Request(alice, "MARK_PAID", o.ID, paidFor(snap, "pay"))
				return err
			})
			got, err := socketcaller.Call[orders.Order](alice, c, "GET_ORDER", o.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if e := status.AsError(errs[1]); errs[1] != nil && e.Details[socket.DetailReason] != orders.ReasonPurchaseInProgress && e.Details[socket.DetailReason] != orders.ReasonOrderPaid {
				t.Fatalf("round %d: the edit: %v", round, errs[1])
			}
			switch {
			case errs[0] == nil && got.Status != orders.StatusPaid:
				t.Fatalf("round %d: MARK_PAID succeeded, order %+v", round, got)
			case errs[0] == nil && got.TotalCents != charged:
				t.Fatalf("round %d: paid with total %d but %d was charged", round, got.TotalCents, charged)
			case errs[0] != nil && got.Status == orders.StatusPaid:
				t.Fatalf("round %d: purchase failed (%v) but the order is paid", round, errs[0])
			case errs[0] != nil:
				if code := status.CodeOf(errs[0]); code != socket.CodeConflict {
					t.Fatalf("round %d: purchase: %v", round, errs[0])
				}
			}
			if errs[0] == nil && errs[1] == nil && got.TotalCents != 15000 {
				t.Fatalf("round %d: the edit came first, but the purchase charged %d: %+v", round, charged, got)
			}
		}
	})
}

// TestUpdateWithVersion checks UPDATE_ORDER's compare-and-set on the
// version the caller read, and that an update changing nothing makes no
// new version.
func TestUpdateWithVersion(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		alice := sockettest.As(t, "v1", "alice")
		o := mustOrder(t, c, "alice", "")
		same, err := socketcaller.Call[orders.Order](alice, c, "UPDATE_ORDER", o.ID, raw(`{"lines": [{"item_id": "apple", "quantity": 1}]}`))
		if err != nil || same.Version != 1 {
			t.Fatalf("an update that changes nothing: %+v %v", same, err)
		}
		v2, err := socketcaller.Call[orders.Order](alice, c, "UPDATE_ORDER", o.ID, raw(`{"version": 1, "lines": [{"item_id": "pear", "quantity": 1}]}`))
		if err != nil || v2.Version != 2 || v2.TotalCents != 200 {
			t.Fatalf("update at version 1: %+v %v", v2, err)
		}
		_, err = c.Request(alice, "UPDATE_ORDER", o.ID, raw(`{"version": 1, "lines": [{"item_id": "melon", "quantity": 1}]}`))
		wantErr(t, err, socket.CodeConflict, orders.ReasonOrderChanged)
		if got, _ := socketcaller.Call[orders.Order](alice, c, "GET_ORDER", o.ID, nil); got.Version != 2 || got.TotalCents != 200 {
			t.Fatalf("after a stale update: %+v", got)
		}
	})
}

// TestEditAfterPurchaseBegan is the race played step by step: the edit
// comes 8 ms after the payment started, i.e. between BEGIN_PURCHASE and
// MARK_PAID.
func TestEditAfterPurchaseBegan(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		alice := sockettest.As(t, "v1", "alice")
		o := mustOrder(t, c, "alice", "", orders.Line{ItemID: "apple", Quantity: 1})
		snap := begin(t, c, alice, o.ID)
		_, err := c.Request(alice, "UPDATE_ORDER", o.ID, raw(`{"lines": [{"item_id": "apple", "quantity": 100}]}`))
		wantErr(t, err, socket.CodeConflict, orders.ReasonPurchaseInProgress)
		_, err = c.Request(alice, "DELETE_ORDER", o.ID, nil)
		wantErr(t, err, socket.CodeConflict, orders.ReasonPurchaseInProgress)
		// A MARK_PAID for another amount than the snapshot's is refused.
		wrong := paidFor(snap, "pay")
		wrong.AmountCents = 15000
		_, err = c.Request(alice, "MARK_PAID", o.ID, wrong)
		wantErr(t, err, socket.CodeConflict, orders.ReasonAmountMismatch)
		paid, err := socketcaller.Call[orders.Order](alice, c, "MARK_PAID", o.ID, paidFor(snap, "pay"))
		if err != nil || paid.TotalCents != 150 || paid.Lines[0].Quantity != 1 {
			t.Fatalf("paid: %+v %v", paid, err)
		}
	})
}

// TestLeaseExpiry lets a purchase's lease run out (on an injected clock):
// an edit then proceeds, abandoning the purchase, and the purchase's
// MARK_PAID fails instead of marking the edited order paid.
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c, clk := startWithClock(t, st)
		alice, bob := sockettest.As(t, "v1", "alice"), sockettest.As(t, "v1", "bob")
		mustVoucher(t, c, "ONCE", 50)
		o := mustOrder(t, c, "alice", "ONCE", orders.Line{ItemID: "apple", Quantity: 1})
		b := mustOrder(t, c, "bob", "ONCE")

		snap := begin(t, c, withKey(alice, "k1"), o.ID)
		if snap.PurchaseID != "k1" || !snap.LeaseExpiresAt.Equal(clk.Now().Add(time.Minute)) {
			t.Fatalf("snapshot: %+v", snap)
		}
		// The voucher is held: bob's purchase stops before any charge.
		_, err := c.Request(bob, "BEGIN_PURCHASE", b.ID, nil)
		wantErr(t, err, socket.CodeFailedPrecondition, orders.ReasonVoucherUsed)

		// A retry of the same purchase renews the lease and keeps the version.
		clk.Advance(50 * time.Second)
		again := begin(t, c, withKey(alice, "k1"), o.ID)
		if again.Version != snap.Version || !again.LeaseExpiresAt.Equal(clk.Now().Add(time.Minute)) {
			t.Fatalf("retry: %+v, first %+v", again, snap)
		}
		// Another purchase while the lease is live.
		_, err = c.Request(withKey(alice, "k2"), "BEGIN_PURCHASE", o.ID, nil)
		wantErr(t, err, socket.CodeConflict, orders.ReasonPurchaseInProgress)

		clk.Advance(61 * time.Second)
		edited, err := socketcaller.Call[orders.Order](alice, c, "UPDATE_ORDER", o.ID, raw(`{"lines": [{"item_id": "apple", "quantity": 100}]}`))
		if err != nil || edited.Status != orders.StatusPending || edited.TotalCents != 14950 || edited.Version != snap.Version+1 || edited.PurchaseID != "" {
			t.Fatalf("edit after the lease: %+v %v", edited, err)
		}
		_, err = c.Request(alice, "MARK_PAID", o.ID, paidFor(snap, "pay_stale"))
		wantErr(t, err, socket.CodeConflict, orders.ReasonOrderChanged)
		if got, _ := socketcaller.Call[orders.Order](alice, c, "GET_ORDER", o.ID, nil); got.Status != orders.StatusPending || got.PaymentID != "" {
			t.Fatalf("after a stale MARK_PAID: %+v", got)
		}
		// The edit let the voucher go: bob may buy with it now, and alice
		// may not while he holds it.
		bsnap := begin(t, c, bob, b.ID)
		_, err = c.Request(alice, "BEGIN_PURCHASE", o.ID, nil)
		wantErr(t, err, socket.CodeFailedPrecondition, orders.ReasonVoucherUsed)
		if got, err := socketcaller.Call[orders.Order](bob, c, "MARK_PAID", b.ID, paidFor(bsnap, "pay_b")); err != nil || got.Status != orders.StatusPaid {
			t.Fatalf("bob pays with the voucher: %+v %v", got, err)
		}
	})
}

// TestAbortPurchase checks that ABORT_PURCHASE undoes only its own
// purchase.
func TestAbortPurchase(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c, clk := startWithClock(t, st)
		alice, bob := sockettest.As(t, "v1", "alice"), sockettest.As(t, "v1", "bob")
		o := mustOrder(t, c, "alice", "")
		abort := func(ctx context.Context, purchase string) (orders.AbortResult, error) {
			return socketcaller.Call[orders.AbortResult](ctx, c, "ABORT_PURCHASE", o.ID, orders.AbortPurchaseInput{PurchaseID: purchase})
		}
		r, err := abort(alice, "k1")
		if err != nil || r.Aborted || r.Reason != orders.AbortNotPaying || r.Status != orders.StatusPending || r.Version != 1 {
			t.Fatalf("abort of a pending order: %+v %v", r, err)
		}
		snap := begin(t, c, withKey(alice, "k1"), o.ID)
		_, err = abort(bob, "k1")
		wantErr(t, err, socket.CodeNotFound, "")
		_, err = c.Request(alice, "ABORT_PURCHASE", o.ID, raw(`{}`))
		wantErr(t, err, socket.CodeInvalidArgument, "")
		r, err = abort(alice, "someone_elses")
		if err != nil || r.Aborted || r.Reason != orders.AbortOtherPurchase || r.Status != orders.StatusPaying || r.Version != snap.Version || r.PurchaseID != "k1" {
			t.Fatalf("abort of a foreign purchase: %+v %v", r, err)
		}
		r, err = abort(alice, "k1")
		if err != nil || !r.Aborted || r.Status != orders.StatusPending || r.Version != snap.Version+1 {
			t.Fatalf("abort: %+v %v", r, err)
		}
		// Aborting again does nothing: idempotent.
		if r2, err := abort(alice, "k1"); err != nil || r2.Aborted || r2.Version != r.Version {
			t.Fatalf("abort again: %+v %v", r2, err)
		}
		_, err = c.Request(alice, "MARK_PAID", o.ID, paidFor(snap, "pay"))
		wantErr(t, err, socket.CodeConflict, orders.ReasonOrderChanged)

		// A purchase taken over after its lease: the old one's abort does
		// not touch the new one.
		begin(t, c, withKey(alice, "k2"), o.ID)
		clk.Advance(2 * time.Minute)
		taken := begin(t, c, withKey(alice, "k3"), o.ID)
		if taken.PurchaseID != "k3" {
			t.Fatalf("takeover: %+v", taken)
		}
		if r, err := abort(alice, "k2"); err != nil || r.Aborted || r.PurchaseID != "k3" || r.Status != orders.StatusPaying {
			t.Fatalf("abort of the old purchase: %+v %v", r, err)
		}
		paid, err := socketcaller.Call[orders.Order](alice, c, "MARK_PAID", o.ID, paidFor(taken, "pay_k3"))
		if err != nil || paid.Status != orders.StatusPaid {
			t.Fatalf("paid: %+v %v", paid, err)
		}
		if r, err := abort(alice, "k3"); err != nil || r.Aborted || r.Status != orders.StatusPaid || r.Reason != orders.AbortNotPaying {
			t.Fatalf("abort of a paid purchase: %+v %v", r, err)
		}
	})
}

// TestOthersOrdersLookMissing checks that another user's order answers
// every action exactly like a missing order.
func TestOthersOrdersLookMissing(t *testing.T) {
	t.Parallel()
	c := startService(t, orders.NewMemoryStore(), catalogue)
	bob := sockettest.As(t, "v1", "bob")
	o := mustOrder(t, c, "alice", "")
	const ghost = "ord_000000000000"
	shape := func(err error, id string) string {
		if err == nil {
			return "no error"
		}
		e := status.AsError(err)
		return fmt.Sprintf("%s %q %v", e.Code, strings.ReplaceAll(e.Message, id, "ID"), e.Details)
	}
	for _, a := range []struct {
		action string
		body   any
	}{
		{"GET_ORDER", nil},
		{"REQUIRE_PENDING", nil},
		{"CHECK_VOUCHER", nil},
		{"UPDATE_ORDER", raw(`{"lines": [{"item_id": "apple", "quantity": 2}]}`)},
		{"DELETE_ORDER", nil},
		{"BEGIN_PURCHASE", nil},
		{"ABORT_PURCHASE", orders.AbortPurchaseInput{PurchaseID: "p"}},
		{"MARK_PAID", orders.MarkPaidInput{PaymentID: "pay", AmountCents: 150, Version: 1, PurchaseID: "p"}},
	} {
		_, other := c.Request(bob, a.action, o.ID, a.body)
		_, missing := c.Request(bob, a.action, ghost, a.body)
		wantErr(t, missing, socket.CodeNotFound, "")
		if got, want := shape(other, o.ID), shape(missing, ghost); got != want {
			t.Errorf("%s of another's order: %s; of a missing one: %s", a.action, got, want)
		}
	}
	if got, err := socketcaller.Call[orders.Order](sockettest.As(t, "v1", "alice"), c, "GET_ORDER", o.ID, nil); err != nil || got.Version != 1 {
		t.Fatalf("alice's order after bob's calls: %+v %v", got, err)
	}
}

func TestRegisterRefusesBadLease(t *testing.T) {
	t.Parallel()
	srv, err := socket.NewServer(socket.Config{Name: "orders"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := orders.Register(srv, orders.NewMemoryStore(), catalogue, orders.WithPurchaseLease(0)); err == nil {
		t.Fatal("a zero lease was accepted")
	}
}
