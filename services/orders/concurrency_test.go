package orders_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/sockettest"
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

func TestConcurrentMarkPaid(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		o := mustOrder(t, c, "alice", "")
		const n = 20
		errs := race(n, func(i int) error {
			_, err := c.Request(sockettest.As(t, "v1", "alice"), "MARK_PAID", o.ID, orders.MarkPaidInput{PaymentID: fmt.Sprintf("pay_%d", i)})
			return err
		})
		winner := -1
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
		if winner < 0 {
			t.Fatal("no MARK_PAID succeeded")
		}
		got, err := socket.Call[orders.Order](sockettest.As(t, "v1", "alice"), c, "GET_ORDER", o.ID, nil)
		if err != nil || got.Status != orders.StatusPaid || got.PaymentID != fmt.Sprintf("pay_%d", winner) {
			t.Fatalf("paid order: %+v %v, want payment of call %d", got, err, winner)
		}
	})
}

func TestConcurrentVoucherRedemption(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		// Rounds of orders sharing a voucher, all paid at once: 8 vouchers
		// × 4 orders, 32 calls in flight.
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
		errs := race(len(orderIDs), func(i int) error {
			_, err := c.Request(admin, "MARK_PAID", orderIDs[i], orders.MarkPaidInput{PaymentID: "pay"})
			return err
		})
		for v := range vouchers {
			paid := 0
			for i := v * perVoucher; i < (v+1)*perVoucher; i++ {
				got, err := socket.Call[orders.Order](admin, c, "GET_ORDER", orderIDs[i], nil)
				if err != nil {
					t.Fatal(err)
				}
				if errs[i] == nil {
					paid++
					if got.Status != orders.StatusPaid {
						t.Fatalf("order %s: MARK_PAID succeeded but it is %s", got.ID, got.Status)
					}
					continue
				}
				wantErr(t, errs[i], socket.CodeFailedPrecondition, orders.ReasonVoucherUsed)
				if got.Status != orders.StatusPending {
					t.Fatalf("order %s: MARK_PAID failed but it is %s", got.ID, got.Status)
				}
			}
			if paid != 1 {
				t.Fatalf("voucher SHARED%d paid for %d orders, want 1", v, paid)
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
					_, err := c.Request(alice, "MARK_PAID", o.ID, orders.MarkPaidInput{PaymentID: "pay"})
					return err
				}
				body = map[string]any{}
			}
			_, err := c.Request(alice, "UPDATE_ORDER", o.ID, body)
			return err
		})
		linesSet, voucherSet := false, false
		for i, err := range errs {
			switch code := socket.CodeOf(err); {
			case err == nil:
				linesSet = linesSet || i%3 == 0
				voucherSet = voucherSet || i%3 == 1
			case i == n-1:
				t.Fatalf("MARK_PAID: %v", err)
			case code == socket.CodeFailedPrecondition || code == socket.CodeConflict:
				// after payment, or beaten repeatedly by the others
			default:
				t.Fatalf("update %d: %v", i, err)
			}
		}
		got, err := socket.Call[orders.Order](alice, c, "GET_ORDER", o.ID, nil)
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
		if _, err := c.Request(alice, "UPDATE_ORDER", o.ID, map[string]any{"voucher_code": ""}); socket.CodeOf(err) != socket.CodeFailedPrecondition {
			t.Fatalf("update after payment: %v", err)
		}
	})
}
