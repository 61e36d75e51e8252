package stack_test

// Money under retries and races, through the whole stack: each test here
// reproduces a defect of issue 8 ("Money is exact under retries, races and
// faults") from outside, over real HTTP, and states the invariant that
// must hold instead.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/tools/internal/resttest"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

// paymentsOf lists an order's payments as the admin.
func (s *testStack) paymentsOf(t testing.TB, orderID string) []payments.Payment {
	t.Helper()
	r := s.call(t, admin(), "GET", "/v1/payments?order_id="+orderID, nil).Want(t, http.StatusOK, "")
	return resttest.Into[payments.Page](t, r).Items
}

// checkCharged fails the test unless the order's money adds up: a paid
// order has exactly one succeeded payment, of its total, whose id it
// records, and nothing refunded; an order that is not paid keeps no
// succeeded payment.
func (s *testStack) checkCharged(t testing.TB, orderID string) orders.Order {
	t.Helper()
	o := s.order(t, orderID)
	var kept []payments.Payment
	for _, p := range s.paymentsOf(t, orderID) {
		switch p.Status {
		case payments.StatusSucceeded:
			kept = append(kept, p)
		case payments.StatusPending:
			t.Errorf("order %s: payment %s still pending", orderID, p.ID)
		case payments.StatusRefunded:
			if o.Status == orders.StatusPaid && p.ID == o.PaymentID {
				t.Errorf("order %s is paid by payment %s, which is refunded", orderID, p.ID)
			}
		}
	}
	switch {
	case o.Status == orders.StatusPaid && len(kept) != 1:
		t.Errorf("order %s is paid, with %d succeeded payments: %+v", orderID, len(kept), kept)
	case o.Status == orders.StatusPaid && (kept[0].ID != o.PaymentID || kept[0].AmountCents != o.TotalCents):
		t.Errorf("order %s is paid by %s for a total of %d, but payment %s charged %d", orderID, o.PaymentID, o.TotalCents, kept[0].ID, kept[0].AmountCents)
	case o.Status != orders.StatusPaid && len(kept) != 0:
		t.Errorf("order %s is %s, yet payments %+v kept the money", orderID, o.Status, kept)
	}
	return o
}

// TestSameKeyConcurrentPaysChargeOnce: 50 concurrent retries of one
// purchase with the same Idempotency-Key, on five orders at once. Defect:
// a duplicate passed the pending check, its PAY replayed the first charge,
// its MARK_PAID failed and its undo refunded the real charge while the
// order ended paid.
func TestSameKeyConcurrentPaysChargeOnce(t *testing.T) {
	s := startStack(t, stack.Options{})
	const ordersN, retries = 5, 50
	it := s.newItem(t, 1500, 1000)
	for _, version := range []string{"v1", "v3"} {
		t.Run(version, func(t *testing.T) {
			user := "samekey-" + version
			s.newUser(t, user)
			tok := as(t, user)
			ids := make([]string, ordersN)
			keys := make([]string, ordersN)
			for i := range ids {
				ids[i] = s.newOrder(t, user, it.ID, 1, "").ID
				keys[i] = newKey()
			}
			replies := make([][]reply, ordersN)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range ids {
				replies[i] = make([]reply, retries)
				for j := range retries {
					wg.Go(func() {
						<-start
						r, err := s.tryPay(version, tok, ids[i], "A", cardOK, "Idempotency-Key", keys[i])
						if err != nil {
							t.Error(err)
						}
						replies[i][j] = r
					})
				}
			}
			close(start)
			wg.Wait()
			for i, id := range ids {
				ok := 0
				var first string
				for _, r := range replies[i] {
					switch {
					case r.Status == http.StatusOK:
						ok++
						if first == "" {
							first = string(r.Result)
						} else if string(r.Result) != first {
							t.Errorf("order %s: two different successes for one key:\n%s\n%s", id, first, r.Result)
						}
					case r.Status == http.StatusConflict && r.Reason() == "idempotency_key_in_use":
						if r.Header.Get("Retry-After") == "" {
							t.Errorf("order %s: 409 in use without Retry-After", id)
						}
					default:
						t.Errorf("order %s: unexpected answer %d: %s", id, r.Status, r.Raw)
					}
				}
				if ok == 0 {
					t.Errorf("order %s: no retry succeeded", id)
				}
				if i == 0 {
					t.Logf("%s: %d requests with one key: %d answered 200, %d 409 in use", version, retries, ok, retries-ok)
				}
				if o := s.checkCharged(t, id); o.Status != orders.StatusPaid {
					t.Errorf("order %s is %s after its purchase succeeded", id, o.Status)
				}
				// Once the first run is done, a retry replays its answer.
				again := s.pay(t, version, tok, id, "A", cardOK, "Idempotency-Key", keys[i]).Want(t, http.StatusOK, "")
				if again.Header.Get("Idempotent-Replayed") != "true" || string(again.Result) != first {
					t.Errorf("order %s: a retry after success got %q (replayed %q), want the first answer", id, again.Raw, again.Header.Get("Idempotent-Replayed"))
				}
			}
		})
	}
}

// TestManyKeysConcurrentPaysChargeOnce: 50 concurrent purchases of one
// order, each with its own key: one charge, the order paid, the payment
// succeeded.
func TestManyKeysConcurrentPaysChargeOnce(t *testing.T) {
	s := startStack(t, stack.Options{})
	const payers = 50
	it := s.newItem(t, 900, 1000)
	s.newUser(t, "manykeys")
	tok := as(t, "manykeys")
	for _, version := range []string{"v1", "v2", "v3"} {
		o := s.newOrder(t, "manykeys", it.ID, 1, "")
		replies := make([]reply, payers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range payers {
			wg.Go(func() {
				<-start
				r, err := s.tryPay(version, tok, o.ID, "A", cardOK)
				if err != nil {
					t.Error(err)
				}
				replies[i] = r
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, r := range replies {
			switch {
			case r.Status == http.StatusOK:
				ok++
			case r.Status == http.StatusConflict:
			default:
				t.Errorf("%s: unexpected answer %d: %s", version, r.Status, r.Raw)
			}
		}
		if ok != 1 {
			t.Errorf("%s: %d purchases succeeded, want 1", version, ok)
		}
		t.Logf("%s: %d purchases with %d keys: %d answered 200, %d 409", version, payers, payers, ok, payers-ok)
		if got := s.checkCharged(t, o.ID); got.Status != orders.StatusPaid {
			t.Errorf("%s: order is %s", version, got.Status)
		}
		if n := s.payments(t, o.ID); n[payments.StatusSucceeded] != 1 || n[payments.StatusRefunded] != 0 {
			t.Errorf("%s: payments %v, want one succeeded and none refunded", version, n)
		}
	}
}

// TestEditRacingPurchase: an order edited while it is being paid. Defect:
// the order ended paid for 100 books while one was charged. Either the
// edit is refused or the purchase fails; a paid order's total is always
// what was charged, and under v3 the stock taken is what was paid for.
func TestEditRacingPurchase(t *testing.T) {
	s := startStack(t, stack.Options{})
	const price, stock, trials = 1500, 100000, 8
	for _, version := range []string{"v1", "v2", "v3"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			user := "editor-" + version
			s.newUser(t, user)
			tok := as(t, user)
			outcomes := map[string]int{}
			defer func() { t.Logf("%s: %d races: %v", version, trials, outcomes) }()
			for trial := range trials {
				it := s.newItem(t, price, stock)
				o := s.newOrder(t, user, it.ID, 1, "")
				var pay, edit reply
				var wg sync.WaitGroup
				paying := make(chan struct{})
				wg.Go(func() {
					close(paying)
					r, err := s.tryPay(version, tok, o.ID, "A", cardOK)
					if err != nil {
						t.Error(err)
					}
					pay = r
				})
				wg.Go(func() {
					<-paying
					// Spread the edits over the purchase: before, during
					// the charge, around MARK_PAID.
					<-time.After(time.Duration(trial*4) * time.Millisecond)
					r, err := s.do(tok, "PATCH", "/"+version+"/orders/"+o.ID, map[string]any{"lines": []orders.Line{{ItemID: it.ID, Quantity: 100}}})
					if err != nil {
						t.Error(err)
					}
					edit = r
				})
				wg.Wait()
				got := s.checkCharged(t, o.ID)
				if got.Status == orders.StatusPaid && edit.Status == http.StatusOK {
					var edited orders.Order
					if err := json.Unmarshal(edit.Result, &edited); err == nil && edited.TotalCents != got.TotalCents {
						t.Errorf("trial %d: the edit succeeded (total %d) and the order is paid with total %d", trial, edited.TotalCents, got.TotalCents)
					}
				}
				if pay.Status == http.StatusOK && got.Status != orders.StatusPaid {
					t.Errorf("trial %d: the purchase answered 200 but the order is %s", trial, got.Status)
				}
				outcomes[fmt.Sprintf("pay %d, edit %d", pay.Status, edit.Status)]++
				if len(got.Lines) != 1 {
					t.Fatalf("trial %d: order lines %+v", trial, got.Lines)
				}
				want := int64(stock)
				if version == "v3" && got.Status == orders.StatusPaid {
					want -= got.Lines[0].Quantity
				}
				if left := s.item(t, it.ID).Stock; left != want {
					t.Errorf("trial %d: stock %d, want %d (order %s, lines %+v)", trial, left, want, got.Status, got.Lines)
				}
			}
		})
	}
}

// TestIdempotencyKeyContract: what docs/idempotency.md promises of Idempotency-Key on
// the pay routes. Defects: a retry after success got 409 already_paid, a
// different body 409, a missing key and a 60,000-byte key were accepted.
func TestIdempotencyKeyContract(t *testing.T) {
	s := startStack(t, stack.Options{})
	it := s.newItem(t, 1200, 100)
	s.newUser(t, "keyholder")
	tok := as(t, "keyholder")

	o := s.newOrder(t, "keyholder", it.ID, 1, "")
	key := newKey()
	first := s.pay(t, "v1", tok, o.ID, "A", cardOK, "Idempotency-Key", key).Want(t, http.StatusOK, "")
	if first.Header.Get("Idempotent-Replayed") == "true" {
		t.Errorf("the first run says it was replayed")
	}
	retry := s.pay(t, "v1", tok, o.ID, "A", cardOK, "Idempotency-Key", key).Want(t, http.StatusOK, "")
	if retry.Raw != first.Raw || retry.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry after success: %s (replayed %q), want %s replayed", retry.Raw, retry.Header.Get("Idempotent-Replayed"), first.Raw)
	}
	other := s.pay(t, "v1", tok, o.ID, "A", "4242424242424241", "Idempotency-Key", key)
	if other.Status != http.StatusUnprocessableEntity || other.Reason() != "idempotency_key_reused" {
		t.Errorf("same key, other body: %d %s, want 422 idempotency_key_reused", other.Status, other.Raw)
	}
	s.checkCharged(t, o.ID)

	fresh := s.newOrder(t, "keyholder", it.ID, 1, "")
	missing, err := s.do(tok, "POST", "/v1/orders/"+fresh.ID+"/pay", map[string]any{"gateway": "A", "card": cardOK})
	if err != nil {
		t.Fatal(err)
	}
	if missing.Want(t, http.StatusBadRequest, socket.CodeInvalidArgument); missing.Reason() != "idempotency_key_required" {
		t.Errorf("no key: %s, want reason idempotency_key_required", missing.Raw)
	}
	for name, bad := range map[string]string{
		"60000 bytes": strings.Repeat("k", 60000),
		"256 bytes":   strings.Repeat("k", 256),
	} {
		r := s.pay(t, "v1", tok, fresh.ID, "A", cardOK, "Idempotency-Key", bad)
		if r.Want(t, http.StatusBadRequest, socket.CodeInvalidArgument); r.Reason() != "invalid_idempotency_key" {
			t.Errorf("%s key: %s, want reason invalid_idempotency_key", name, r.Raw)
		}
	}
	if got := s.order(t, fresh.ID); got.Status != orders.StatusPending || len(s.paymentsOf(t, fresh.ID)) != 0 {
		t.Errorf("refused keys touched the order: %s, payments %+v", got.Status, s.paymentsOf(t, fresh.ID))
	}
	// A 255-byte key is fine.
	s.pay(t, "v1", tok, fresh.ID, "A", cardOK, "Idempotency-Key", strings.Repeat("k", 255)).Want(t, http.StatusOK, "")
}

// TestNoExistenceLeaks: other users' objects answer exactly like missing
// ones. Defects: check_purchasable answered about anyone, someone else's
// payment was 403 where a missing one is 404, ListRoutes was open to every
// signed-in user.
func TestNoExistenceLeaks(t *testing.T) {
	s := startStack(t, stack.Options{})
	s.newUser(t, "cat")
	s.newUser(t, "dan")
	it := s.newItem(t, 100, 10)
	danOrder := s.newOrder(t, "dan", it.ID, 1, "")
	s.pay(t, "v1", as(t, "dan"), danOrder.ID, "A", cardOK).Want(t, http.StatusOK, "")
	danPayment := s.order(t, danOrder.ID).PaymentID
	cat := as(t, "cat")

	pairs := []struct{ name, other, missing string }{
		{"user", "/v1/users/dan", "/v1/users/nobody"},
		{"check_purchasable", "/v1/users/dan/check_purchasable", "/v1/users/nobody/check_purchasable"},
		{"order", "/v1/orders/" + danOrder.ID, "/v1/orders/ord_000000000000"},
		{"payment", "/v1/payments/" + danPayment, "/v1/payments/pay_000000000000"},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			other := s.call(t, cat, "GET", p.other, nil).Want(t, http.StatusNotFound, socket.CodeNotFound)
			missing := s.call(t, cat, "GET", p.missing, nil).Want(t, http.StatusNotFound, socket.CodeNotFound)
			shape := func(r reply, path string) string {
				id := path[strings.LastIndex(strings.TrimSuffix(path, "/check_purchasable"), "/")+1:]
				id = strings.TrimSuffix(id, "/check_purchasable")
				return strings.ReplaceAll(r.Error.Message, id, "ID")
			}
			if shape(other, p.other) != shape(missing, p.missing) {
				t.Errorf("another's %s answers %q, a missing one %q", p.name, other.Error.Message, missing.Error.Message)
			}
		})
	}
	s.call(t, cat, "GET", "/v1/users/cat/check_purchasable", nil).Want(t, http.StatusOK, "")
	s.call(t, admin(), "GET", "/v1/users/dan/check_purchasable", nil).Want(t, http.StatusOK, "")

	routes, err := s.do(cat, "GET", "/gateway/v1/versions/v1/routes", nil)
	if err == nil && routes.Status != http.StatusForbidden {
		t.Errorf("a user listed the routes: %d %s", routes.Status, routes.Raw)
	}
	if r, err := s.do(admin(), "GET", "/gateway/v1/versions/v1/routes", nil); err != nil || r.Status != http.StatusOK {
		t.Errorf("the admin cannot list routes: %v %+v", err, r)
	}
}

// TestRefusalsBeforeSideEffects: what a version refuses is refused before
// anything is taken. Defects: v3 with gateway C reserved stock, then
// answered 422 and released it; v1 with a used voucher charged the card,
// then refunded it.
func TestRefusalsBeforeSideEffects(t *testing.T) {
	s := startStack(t, stack.Options{})
	it := s.newItem(t, 1000, 10)
	s.newUser(t, "careful")
	tok := as(t, "careful")

	o := s.newOrder(t, "careful", it.ID, 1, "")
	r := s.pay(t, "v3", tok, o.ID, "C", cardOK).Want(t, http.StatusUnprocessableEntity, socket.CodeNotSupported)
	if _, undone := r.Error.Details["undone"]; undone {
		t.Errorf("v3 with gateway C undid steps, so it took something first: %s", r.Raw)
	}
	if got := s.order(t, o.ID); got.Status != orders.StatusPending {
		t.Errorf("order %s after a refusal", got.Status)
	}

	s.call(t, admin(), "POST", "/v1/vouchers", map[string]any{"code": "USEDUP", "discount_cents": 100}).Want(t, http.StatusCreated, "")
	s.newUser(t, "early")
	early := s.newOrder(t, "early", it.ID, 1, "USEDUP")
	s.pay(t, "v1", as(t, "early"), early.ID, "A", cardOK).Want(t, http.StatusOK, "")
	late := s.newOrder(t, "careful", it.ID, 1, "USEDUP")
	for _, v := range []string{"v1", "v2", "v3"} {
		r := s.pay(t, v, tok, late.ID, "A", cardOK).Want(t, http.StatusUnprocessableEntity, socket.CodeFailedPrecondition)
		if r.Reason() != orders.ReasonVoucherUsed {
			t.Errorf("%s: reason %q, want %s", v, r.Reason(), orders.ReasonVoucherUsed)
		}
		if _, undone := r.Error.Details["undone"]; undone {
			t.Errorf("%s: the used voucher was found after side effects: %s", v, r.Raw)
		}
	}
	if ps := s.paymentsOf(t, late.ID); len(ps) != 0 {
		t.Errorf("a purchase with a used voucher charged: %+v", ps)
	}
	if got := s.item(t, it.ID).Stock; got != 10 {
		t.Errorf("stock %d, want 10 (a v1 purchase takes no stock, a refusal none)", got)
	}
}
