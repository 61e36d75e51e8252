package payments_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

func TestEveryPaymentChangeIsPublished(t *testing.T) {
	t.Parallel()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, k.open(t))
			next := sockettest.Events(t, e.c, "payments/*")
			// want checks the next event: the payment's topic, for alice
			// and admins only, in the status given.
			want := func(step, id string, status payments.Status) {
				t.Helper()
				ev := next()
				var got payments.Payment
				if err := json.Unmarshal(ev.Data, &got); err != nil {
					t.Fatal(err)
				}
				if ev.Topic != "payments/"+id || got.ID != id || got.Status != status || ev.Visibility.Public ||
					!slices.Equal(ev.Visibility.Subjects, []string{"alice"}) || !slices.Equal(ev.Visibility.Roles, []string{"admin"}) {
					t.Fatalf("%s: event %+v data %s, want payments/%s %s for alice and admins", step, ev, ev.Data, id, status)
				}
			}
			p, err := e.pay(alice, payments.PayInput{OrderID: "ord_1", AmountCents: 1500, Gateway: "A", Card: cardOK})
			if err != nil {
				t.Fatal(err)
			}
			want("charge starts", p.ID, payments.StatusPending)
			want("charged", p.ID, payments.StatusSucceeded)
			if _, err := e.c.Request(e.as(admin), "REFUND", p.ID, nil); err != nil {
				t.Fatal(err)
			}
			want("refund", p.ID, payments.StatusRefunded)
			if got := e.get(admin, p.ID); got.Status != payments.StatusRefunded {
				t.Fatalf("after the refund: %+v", got)
			}
		})
	}
}
