package orders_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// race runs n calls at once (released together) and returns their errors.
func race(n int, call func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = call(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// TestConcurrentPurchases begins purchases of one order under different
// purchase ids at once: exactly one wins, the others get CONFLICT; then
// MARK_PAIDs with different payments race on the winner's snapshot:
// exactly one pays the order, the others get ALREADY_EXISTS.
func TestConcurrentPurchases(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		o := mustOrder(t, c, "alice", "")
		const n = 20
		snaps := make([]orders.Order, n)
		errs := race(n, func(i int) error {
			ctx := socketcaller.ContextWithMeta(sockettest.As(t, "v1", "alice"), socket.Meta{
				APIVersion: "v1", Principal: socket.Principal{Subject: "alice"}, IdempotencyKey: fmt.Sprintf("key_%d", i),
			})
			var err error
			snaps[i], err = socketcaller.Call[orders.Order](ctx, c, "BEGIN_PURCHASE", o.ID, nil)
			return err
		})
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("BEGIN_PURCHASE succeeded twice: %d and %d", winner, i)
			case err == nil:
				winner = i
			default:
				wantErr(t, err, socket.CodeConflict, "")
			}
		}
		if winner < 0 {
			t.Fatal("no BEGIN_PURCHASE succeeded")
		}
		snap := snaps[winner]
		if snap.PurchaseID != fmt.Sprintf("key_%d", winner) || snap.Version != 2 {
			t.Fatalf("the winner's snapshot: %+v", snap)
		}
		errs = race(n, func(i int) error {
			_, err := c.Request(sockettest.As(t, "v1", "alice"), "MARK_PAID", o.ID, paidFor(snap, fmt.Sprintf("pay_%d", i)))
			return err
		})
		winner = -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("MARK_PAID succeeded twice: %d and %d", winner, i)
			case err == nil:
				winner = i
			default:
				wantErr(t, err, socket.CodeAlreadyExists, orders.ReasonAlreadyPaid)
			}
		}
		got, err := socketcaller.Call[orders.Order](sockettest.As(t, "v1", "alice"), c, "GET_ORDER", o.ID, nil)
		if err != nil || got.Status != orders.StatusPaid || got.PaymentID != fmt.Sprintf("pay_%d", winner) {
			t.Fatalf("paid order: %+v %v, want payment of call %d", got, err, winner)
		}
	})
}

// TestConcurrentVoucherHolds begins purchases of orders sharing a voucher
// at once: one order per voucher holds it, the others get voucher_used
// before anything could be charged, and every holder can then be paid.
func TestConcurrentVoucherHolds(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		// 8 vouchers × 4 orders, 32 calls in flight.
		const vouchers, perVoucher = 8, 4
		var orderIDs []string
		for v := range vouchers {
			code := fmt.Sprintf("SHARED%d", v)
			mustVoucher(t, c, code, 50)
			for u := range perVoucher {
				orderIDs = append(orderIDs, mustOrder(t, c, fmt.Sprintf("user%d", u), code).ID)
			}
		}
		admin := sockettest.As(t, "v1", "root", "admin")
		snaps := make([]orders.Order, len(orderIDs))
		errs := race(len(orderIDs), func(i int) error {
			var err error
			snaps[i], err = socketcaller.Call[orders.Order](admin, c, "BEGIN_PURCHASE", orderIDs[i], nil)
			return err
		})
		for v := range vouchers {
			held := 0
			for i := v * perVoucher; i < (v+1)*perVoucher; i++ {
				if errs[i] != nil {
					wantErr(t, errs[i], socket.CodeFailedPrecondition, orders.ReasonVoucherUsed)
					continue
				}
				held++
				if _, err := c.Request(admin, "MARK_PAID", orderIDs[i], paidFor(snaps[i], "pay")); err != nil {
					t.Fatalf("MARK_PAID of the voucher's holder: %v", err)
				}
			}
			if held != 1 {
				t.Fatalf("voucher SHARED%d held by %d orders, want 1", v, held)
			}
		}
	})
}

// TestConcurrentUpdates changes one order's lines and voucher at once from
// many callers while it gets paid: no partial update is lost, each total
// matches its lines and voucher, and nothing changes after payment.
func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		mustVoucher(t, c, "TEN", 10)
		o := mustOrder(t, c, "alice", "")
		alice := sockettest.As(t, "v1", "alice")
		const n = 12
		errs := race(n, func(i int) error {
			var body any
			switch i % 3 {
			case 0:
				body = map[string]any{"lines": []orders.Line{{ItemID: "pear", Quantity: int64(i + 1)}}}
			case 1:
				body = map[string]any{"voucher_code": "TEN"}
			default:
				if i == n-1 {
					return payOnce(c, alice, o.ID)
				}
				body = map[string]any{}
			}
			_, err := c.Request(alice, "UPDATE_ORDER", o.ID, body)
			return err
		})
		linesSet, voucherSet := false, false
		for i, err := range errs {
			switch code := status.CodeOf(err); {
			case err == nil:
				linesSet = linesSet || i%3 == 0
				voucherSet = voucherSet || i%3 == 1
			case i == n-1:
				t.Fatalf("purchase: %v", err)
			case code == socket.CodeFailedPrecondition || code == socket.CodeConflict:
				// after payment, or beaten repeatedly by the others
			default:
				t.Fatalf("update %d: %v", i, err)
			}
		}
		got, err := socketcaller.Call[orders.Order](alice, c, "GET_ORDER", o.ID, nil)
		if err != nil || got.Status != orders.StatusPaid {
			t.Fatalf("order: %+v %v", got, err)
		}
		want := prices[got.Lines[0].ItemID] * got.Lines[0].Quantity
		if got.VoucherCode == "TEN" {
			want -= 10
		}
		if linesSet && got.Lines[0].ItemID != "pear" || voucherSet && got.VoucherCode != "TEN" {
			t.Fatalf("a successful partial update was lost: %+v", got)
		}
		if len(got.Lines) != 1 || got.TotalCents != want {
			t.Fatalf("total %d does not match %+v (want %d)", got.TotalCents, got, want)
		}
		if _, err := c.Request(alice, "UPDATE_ORDER", o.ID, map[string]any{"voucher_code": ""}); status.CodeOf(err) != socket.CodeFailedPrecondition {
			t.Fatalf("update after payment: %v", err)
		}
	})
}

// payOnce begins a purchase and marks it paid, starting over while
// concurrent edits keep changing the order under it.
func payOnce(c *socketcaller.Client, ctx context.Context, id string) error {
	for {
		snap, err := socketcaller.Call[orders.Order](ctx, c, "BEGIN_PURCHASE", id, nil)
		if status.CodeOf(err) == socket.CodeConflict {
			continue
		}
		if err != nil {
			return err
		}
		_, err = c.Request(ctx, "MARK_PAID", id, paidFor(snap, "pay"))
		return err
	}
}
