package orders_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// sameKeyOnce sends the request n times at once with one key and once
// more after them, and returns the answer; it fails unless every answer
// is the same and exactly one is not marked replayed.
func sameKeyOnce(t *testing.T, c *socket.Client, ctx context.Context, action, id string, body any) json.RawMessage {
	t.Helper()
	const n = 6
	replies := make([]socket.Reply, n+1)
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { replies[i], errs[i] = c.Do(ctx, action, id, body) })
	}
	wg.Wait()
	replies[n], errs[n] = c.Do(ctx, action, id, body)
	fresh := 0
	for i, r := range replies {
		if errs[i] != nil {
			t.Fatalf("%s %d with one key: %v", action, i, errs[i])
		}
		if string(r.Result) != string(replies[0].Result) {
			t.Fatalf("%s %d answered %s, another %s", action, i, r.Result, replies[0].Result)
		}
		if !r.Replayed {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%s: %d answers not marked replayed, want 1", action, fresh)
	}
	return replies[0].Result
}

// TestSameKeyWritesApplyOnce: order and voucher writes retried with their
// idempotency key (as the gateway sends a client's retry after a lost
// answer) apply once and answer the first result, marked replayed; the
// key with another body is refused.
func TestSameKeyWritesApplyOnce(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		alice, admin := sockettest.As(t, "v1", "alice"), sockettest.As(t, "v1", "root", "admin")

		create := orders.CreateOrderInput{Lines: []orders.Line{{ItemID: "apple", Quantity: 2}}}
		res := sameKeyOnce(t, c, withKey(alice, "h1:CREATE_ORDER"), "CREATE_ORDER", "", create)
		var o orders.Order
		if err := json.Unmarshal(res, &o); err != nil {
			t.Fatal(err)
		}
		page, err := socket.Call[orders.Page[orders.Order]](alice, c, "LIST_ORDERS", "", orders.ListOrdersInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 || page.Items[0].ID != o.ID {
			t.Fatalf("orders after creates with one key: %+v, want only %s", page.Items, o.ID)
		}
		_, err = c.Do(withKey(alice, "h1:CREATE_ORDER"), "CREATE_ORDER", "", orders.CreateOrderInput{Lines: []orders.Line{{ItemID: "pear", Quantity: 1}}})
		wantErr(t, err, socket.CodeConflict, "idempotency_key_reused")

		// An update retried after another change answers its first result
		// and leaves the other change alone.
		two := orders.UpdateOrderInput{Lines: &[]orders.Line{{ItemID: "pear", Quantity: 2}}}
		sameKeyOnce(t, c, withKey(alice, "h2:UPDATE_ORDER"), "UPDATE_ORDER", o.ID, two)
		three := orders.UpdateOrderInput{Lines: &[]orders.Line{{ItemID: "melon", Quantity: 1}}}
		if _, err := c.Do(alice, "UPDATE_ORDER", o.ID, three); err != nil {
			t.Fatal(err)
		}
		if again, err := c.Do(withKey(alice, "h2:UPDATE_ORDER"), "UPDATE_ORDER", o.ID, two); err != nil || !again.Replayed {
			t.Fatalf("update retried: %+v, %v; want the first answer, replayed", again, err)
		}
		if now, err := socket.Call[orders.Order](alice, c, "GET_ORDER", o.ID, nil); err != nil || now.TotalCents != 1000 || now.Version != 3 {
			t.Fatalf("after the retried update: %+v, %v; want the melon at version 3", now, err)
		}
		sameKeyOnce(t, c, withKey(alice, "h3:DELETE_ORDER"), "DELETE_ORDER", o.ID, nil)

		// Vouchers.
		v := orders.Voucher{Code: "SAVE1", DiscountCents: 100}
		sameKeyOnce(t, c, withKey(admin, "h4:CREATE_VOUCHER"), "CREATE_VOUCHER", "", v)
		sameKeyOnce(t, c, withKey(admin, "h5:UPDATE_VOUCHER"), "UPDATE_VOUCHER", "SAVE1", map[string]any{"discount_cents": 200})
		sameKeyOnce(t, c, withKey(admin, "h6:DELETE_VOUCHER"), "DELETE_VOUCHER", "SAVE1", nil)
	})
}
