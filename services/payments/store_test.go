package payments_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/payments"
)

func newPayment(id, order, user string) payments.Payment {
	return payments.Payment{
		ID: id, OrderID: order, UserID: user, AmountCents: 1250, Gateway: "A",
		Status: payments.StatusPending, CardLast4: "4242",
		CreatedAt: time.Unix(0, time.Now().UnixNano()).UTC(),
	}
}

func TestStoreContract(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("create and get", func(t *testing.T) {
				st := kind.open(t)
				p := newPayment("pay_1", "ord_1", "alice")
				if err := st.Create(ctx, p); err != nil {
					t.Fatal(err)
				}
				got, err := st.Get(ctx, "pay_1")
				if err != nil {
					t.Fatal(err)
				}
				if !got.CreatedAt.Equal(p.CreatedAt) {
					t.Fatalf("created_at %v, want %v", got.CreatedAt, p.CreatedAt)
				}
				got.CreatedAt = p.CreatedAt
				if got != p {
					t.Fatalf("got %+v, want %+v", got, p)
				}
				if _, err := st.Get(ctx, "pay_nope"); !errors.Is(err, payments.ErrNotFound) {
					t.Fatalf("missing payment: %v", err)
				}
			})

			t.Run("an order has one holder", func(t *testing.T) {
				st := kind.open(t)
				if err := st.Create(ctx, newPayment("pay_1", "ord_1", "alice")); err != nil {
					t.Fatal(err)
				}
				wantHeld(t, st.Create(ctx, newPayment("pay_2", "ord_1", "alice")), "ord_1", "pay_1", payments.StatusPending)
				if err := st.Create(ctx, newPayment("pay_3", "ord_2", "alice")); err != nil {
					t.Fatalf("another order: %v", err)
				}
				// A failed charge releases the order.
				p, err := st.Update(ctx, "pay_1", payments.Transition{From: payments.StatusPending, To: payments.StatusFailed, FailureReason: "card_declined", ReleaseOrder: true})
				if err != nil || p.Status != payments.StatusFailed || p.FailureReason != "card_declined" {
					t.Fatalf("fail: %+v %v", p, err)
				}
				if err := st.Create(ctx, newPayment("pay_4", "ord_1", "alice")); err != nil {
					t.Fatalf("after a failure: %v", err)
				}
				p, err = st.Update(ctx, "pay_4", payments.Transition{From: payments.StatusPending, To: payments.StatusSucceeded, ProviderRef: "ch_1"})
				if err != nil || p.Status != payments.StatusSucceeded || p.ProviderRef != "ch_1" {
					t.Fatalf("succeed: %+v %v", p, err)
				}
				wantHeld(t, st.Create(ctx, newPayment("pay_5", "ord_1", "alice")), "ord_1", "pay_4", payments.StatusSucceeded)
				// A refund holds the order until the gateway refunded.
				if _, err := st.Update(ctx, "pay_4", payments.Transition{From: payments.StatusSucceeded, To: payments.StatusRefunded}); err != nil {
					t.Fatal(err)
				}
				wantHeld(t, st.Create(ctx, newPayment("pay_6", "ord_1", "alice")), "ord_1", "pay_4", payments.StatusRefunded)
				p, err = st.Update(ctx, "pay_4", payments.Transition{From: payments.StatusRefunded, To: payments.StatusRefunded, ReleaseOrder: true})
				if err != nil || p.ProviderRef != "ch_1" {
					t.Fatalf("release: %+v %v", p, err)
				}
				if err := st.Create(ctx, newPayment("pay_7", "ord_1", "alice")); err != nil {
					t.Fatalf("after a refund: %v", err)
				}
				if err := st.Create(ctx, newPayment("pay_7", "ord_9", "alice")); !errors.Is(err, payments.ErrExists) {
					t.Fatalf("duplicate id: %v", err)
				}
			})

			t.Run("transitions are conditional", func(t *testing.T) {
				st := kind.open(t)
				if err := st.Create(ctx, newPayment("pay_1", "ord_1", "alice")); err != nil {
					t.Fatal(err)
				}
				_, err := st.Update(ctx, "pay_1", payments.Transition{From: payments.StatusSucceeded, To: payments.StatusRefunded})
				var se *payments.StatusError
				if !errors.As(err, &se) || *se != (payments.StatusError{ID: "pay_1", Got: payments.StatusPending, Want: payments.StatusSucceeded}) {
					t.Fatalf("Update from the wrong status: %v, want a *StatusError", err)
				}
				if _, err := st.Update(ctx, "pay_x", payments.Transition{From: payments.StatusPending, To: payments.StatusFailed}); !errors.Is(err, payments.ErrNotFound) {
					t.Fatalf("missing: %v", err)
				}
				// A release by a payment that does not hold the order does nothing.
				if _, err := st.Update(ctx, "pay_1", payments.Transition{From: payments.StatusPending, To: payments.StatusFailed, ReleaseOrder: true}); err != nil {
					t.Fatal(err)
				}
				if err := st.Create(ctx, newPayment("pay_2", "ord_1", "alice")); err != nil {
					t.Fatal(err)
				}
				if _, err := st.Update(ctx, "pay_1", payments.Transition{From: payments.StatusFailed, To: payments.StatusFailed, ReleaseOrder: true}); err != nil {
					t.Fatal(err)
				}
				wantHeld(t, st.Create(ctx, newPayment("pay_3", "ord_1", "alice")), "ord_1", "pay_2", payments.StatusPending)
			})

			t.Run("list filters and pages", func(t *testing.T) {
				st := kind.open(t)
				for i := range 7 {
					p := newPayment(fmt.Sprintf("pay_%02d", i), fmt.Sprintf("ord_%d", i%3), []string{"alice", "bob"}[i%2])
					if err := st.Create(ctx, p); err != nil {
						t.Fatal(err)
					}
					// Statuses by index: failed, refunded, refunded, failed, pending, pending, failed.
					var steps []payments.Transition
					switch {
					case i%3 == 0:
						steps = []payments.Transition{{From: payments.StatusPending, To: payments.StatusFailed, ReleaseOrder: true}}
					case i < 3:
						steps = []payments.Transition{
							{From: payments.StatusPending, To: payments.StatusSucceeded},
							{From: payments.StatusSucceeded, To: payments.StatusRefunded},
							{From: payments.StatusRefunded, To: payments.StatusRefunded, ReleaseOrder: true},
						}
					}
					for _, tr := range steps {
						if _, err := st.Update(ctx, p.ID, tr); err != nil {
							t.Fatal(err)
						}
					}
				}
				ids := func(ps []payments.Payment) string {
					var b bytes.Buffer
					for _, p := range ps {
						b.WriteString(p.ID + " ")
					}
					return b.String()
				}
				tests := []struct {
					name string
					f    payments.Filter
					want string
				}{
					{"all", payments.Filter{}, "pay_00 pay_01 pay_02 pay_03 pay_04 pay_05 pay_06 "},
					{"user", payments.Filter{UserID: "bob"}, "pay_01 pay_03 pay_05 "},
					{"order", payments.Filter{OrderID: "ord_0"}, "pay_00 pay_03 pay_06 "},
					{"status", payments.Filter{Status: payments.StatusFailed}, "pay_00 pay_03 pay_06 "},
					{"user and status", payments.Filter{UserID: "alice", Status: payments.StatusRefunded}, "pay_02 "},
					{"order and status", payments.Filter{OrderID: "ord_1", Status: payments.StatusPending}, "pay_04 "},
					{"page", payments.Filter{After: "pay_02", Limit: 3}, "pay_03 pay_04 pay_05 "},
					{"past the end", payments.Filter{After: "pay_06"}, ""},
				}
				for _, tt := range tests {
					got, err := st.List(ctx, tt.f)
					if err != nil {
						t.Fatal(err)
					}
					if ids(got) != tt.want {
						t.Errorf("%s: got %q, want %q", tt.name, ids(got), tt.want)
					}
				}
			})

			t.Run("idempotency keys", func(t *testing.T) {
				st := kind.open(t)
				rec, claimed, err := st.ClaimKey(ctx, "alice", "k1", "fp1")
				if err != nil || !claimed || rec.Fingerprint != "fp1" {
					t.Fatalf("claim: %+v %v %v", rec, claimed, err)
				}
				rec, claimed, err = st.ClaimKey(ctx, "alice", "k1", "fp2")
				if err != nil || claimed || rec.Fingerprint != "fp1" || rec.Outcome != nil {
					t.Fatalf("claim again: %+v %v %v", rec, claimed, err)
				}
				if _, claimed, _ := st.ClaimKey(ctx, "bob", "k1", "fp2"); !claimed {
					t.Fatal("keys are per subject")
				}
				if err := st.SaveKey(ctx, "alice", "k1", []byte(`{"x":1}`)); err != nil {
					t.Fatal(err)
				}
				if err := st.ReleaseKey(ctx, "alice", "k1"); err != nil {
					t.Fatal(err)
				}
				rec, claimed, err = st.ClaimKey(ctx, "alice", "k1", "fp1")
				if err != nil || claimed || string(rec.Outcome) != `{"x":1}` {
					t.Fatalf("a saved key stays: %+v %v %v", rec, claimed, err)
				}
				if err := st.ReleaseKey(ctx, "bob", "k1"); err != nil {
					t.Fatal(err)
				}
				if _, claimed, _ := st.ClaimKey(ctx, "bob", "k1", "fp3"); !claimed {
					t.Fatal("a released key can be claimed again")
				}
				if err := st.SaveKey(ctx, "carol", "k1", []byte(`{}`)); !errors.Is(err, payments.ErrNoKey) {
					t.Fatalf("save unclaimed: %v", err)
				}
			})

			t.Run("concurrent creates for one order", func(t *testing.T) {
				st := kind.open(t)
				const n = 20
				errs := make(chan error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() { errs <- st.Create(ctx, newPayment(fmt.Sprintf("pay_%02d", i), "ord_1", "alice")) })
				}
				wg.Wait()
				close(errs)
				ok := 0
				for err := range errs {
					var held *payments.HeldError
					switch {
					case err == nil:
						ok++
					case errors.As(err, &held) && held.Status == payments.StatusPending:
					default:
						t.Errorf("unexpected: %v", err)
					}
				}
				all, err := st.List(ctx, payments.Filter{OrderID: "ord_1"})
				if ok != 1 || err != nil || len(all) != 1 {
					t.Fatalf("%d creates succeeded, %d payments (%v); want 1", ok, len(all), err)
				}
			})

			t.Run("concurrent claims of one key", func(t *testing.T) {
				st := kind.open(t)
				const n = 20
				var wg sync.WaitGroup
				var mu sync.Mutex
				claims := 0
				for range n {
					wg.Go(func() {
						_, claimed, err := st.ClaimKey(ctx, "alice", "k", "fp")
						if err != nil {
							t.Error(err)
						}
						if claimed {
							mu.Lock()
							claims++
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				if claims != 1 {
					t.Fatalf("%d claims, want 1", claims)
				}
			})
		})
	}
}

// wantHeld fails unless err is a *HeldError naming the order, its holder
// and the holder's status.
func wantHeld(t testing.TB, err error, orderID, paymentID string, status payments.Status) {
	t.Helper()
	var held *payments.HeldError
	if !errors.As(err, &held) || *held != (payments.HeldError{OrderID: orderID, PaymentID: paymentID, Status: status}) {
		t.Fatalf("got %v, want order %s held by %s (%s)", err, orderID, paymentID, status)
	}
}
