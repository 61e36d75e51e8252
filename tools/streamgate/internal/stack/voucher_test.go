package stack_test

import (
	"net/http"
	"testing"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/tools/internal/resttest"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

// TestVoucherCoveringTheTotalPays: an order whose voucher covers its whole
// price costs 0. Defect: every pay answered 400 about amount_cents, a
// field the client never sent, so the order could never be paid. It is
// paid on v1, v2 and v3 with a payment of 0 that charged nothing, its
// voucher redeemed, and under v3 its stock taken; the same key again
// replays the answer.
func TestVoucherCoveringTheTotalPays(t *testing.T) {
	s := startStack(t, stack.Options{})
	it := s.newItem(t, 1000, 10)
	s.newUser(t, "lucky")
	tok := as(t, "lucky")
	stock := it.Stock
	for _, version := range []string{"v1", "v2", "v3"} {
		t.Run(version, func(t *testing.T) {
			code := "FREE" + version
			s.call(t, admin(), "POST", "/v1/vouchers", map[string]any{"code": code, "discount_cents": 5000}).Want(t, http.StatusCreated, "")
			o := s.newOrder(t, "lucky", it.ID, 2, code)
			if o.TotalCents != 0 {
				t.Fatalf("total %d, want 0", o.TotalCents)
			}
			key := newKey()
			r := s.pay(t, version, tok, o.ID, "A", cardOK, "Idempotency-Key", key).Want(t, http.StatusOK, "")
			paid := resttest.Into[orders.Order](t, r)
			ps := s.paymentsOf(t, o.ID)
			if paid.Status != orders.StatusPaid || len(ps) != 1 || ps[0].ID != paid.PaymentID || ps[0].AmountCents != 0 ||
				ps[0].Status != payments.StatusSucceeded || ps[0].ProviderRef != "" {
				t.Fatalf("order %+v, payments %+v", paid, ps)
			}
			s.checkCharged(t, o.ID)
			again := s.pay(t, version, tok, o.ID, "A", cardOK, "Idempotency-Key", key).Want(t, http.StatusOK, "")
			if again.Header.Get("Idempotent-Replayed") != "true" || string(again.Result) != string(r.Result) {
				t.Errorf("the retry: %s %v", again.Raw, again.Header)
			}
			// The voucher is redeemed: another order with it is refused.
			other := s.newOrder(t, "lucky", it.ID, 1, code)
			s.pay(t, version, tok, other.ID, "A", cardOK).Want(t, http.StatusUnprocessableEntity, socket.CodeFailedPrecondition)
			if version == "v3" {
				stock -= 2
			}
			if got := s.item(t, it.ID).Stock; got != stock {
				t.Errorf("stock %d, want %d", got, stock)
			}
		})
	}
}
