package payments_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket"
)

// dyingStore is a store whose process "dies" at a chosen point of PAY:
// from then on the writes that would record the charge's outcome, store
// the key's outcome or release the key never happen.
type dyingStore struct {
	payments.Store
	dead        atomic.Bool
	afterCharge bool // die after the charge is recorded (else before)
}

var errDead = errors.New("the process died")

func (d *dyingStore) Update(ctx context.Context, id string, t payments.Transition) (payments.Payment, error) {
	if d.dead.Load() && !d.afterCharge {
		return payments.Payment{}, errDead
	}
	return d.Store.Update(ctx, id, t)
}

func (d *dyingStore) SaveKey(ctx context.Context, subject, key string, outcome []byte) error {
	if d.dead.Load() {
		return errDead
	}
	return d.Store.SaveKey(ctx, subject, key, outcome)
}

func (d *dyingStore) ReleaseKey(ctx context.Context, subject, key string) error {
	if d.dead.Load() {
		return errDead
	}
	return d.Store.ReleaseKey(ctx, subject, key)
}

// TestRetryAfterACrashConverges: a PAY whose process died after claiming
// its Idempotency-Key left no outcome under the key. A retry with the key
// waits (409 in use) while the payment is unsettled, then, once the settle
// pass has asked the gateway, gets the payment: one charge, never a second.
// Before, the key stayed "in use" for ever.
func TestRetryAfterACrashConverges(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name        string
		afterCharge bool // the charge was recorded before the death
	}{
		{"died before recording the charge", false},
		{"died after recording the charge", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st := &dyingStore{Store: payments.NewMemoryStore(), afterCharge: c.afterCharge}
			e := newEnv(t, st)
			in := payments.PayInput{OrderID: "ord_crash", AmountCents: 1200, Gateway: "A", Card: "4242424242424242"}
			alice := caller{version: "v2", subject: "alice", key: "crash-key"}

			st.dead.Store(true)
			_, err := e.pay(alice, in)
			if err == nil {
				t.Fatal("a PAY whose process died answered ok")
			}
			st.dead.Store(false) // the process is back, the key is still claimed
			if !c.afterCharge {
				_, err = e.pay(alice, in)
				wantCode(t, err, socket.CodeConflict, "idempotency_key_in_use")
				if _, err := payments.Settle(e.ctx, st, e.providers, 0, time.Now().Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			before := e.charges()
			p, err := e.pay(alice, in)
			if err != nil {
				t.Fatalf("the retry after settling: %v", err)
			}
			if p.Status != payments.StatusSucceeded || p.OrderID != in.OrderID {
				t.Fatalf("the retry got %+v", p)
			}
			if n := e.newCharges(before); n != 0 {
				t.Fatalf("the retry charged %d more times", n)
			}
			if again, err := e.pay(alice, in); err != nil || again.ID != p.ID {
				t.Fatalf("a second retry: %+v, %v; want payment %s", again, err, p.ID)
			}
			if n := e.sandboxes["A"].Taken(); len(n) != 1 {
				t.Fatalf("gateway A holds %d charges, want 1", len(n))
			}
		})
	}
}
