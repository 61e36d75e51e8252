package orders_test

import (
	"encoding/json"
	"testing"

	"github.com/streamgate/streamgate/services/internal/once/oncetest"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

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
		res := oncetest.Once(t, c, oncetest.WithKey(alice, "h1:CREATE_ORDER"), "CREATE_ORDER", "", create)
		var o orders.Order
		if err := json.Unmarshal(res, &o); err != nil {
			t.Fatal(err)
		}
		page, err := socketcaller.Call[orders.Page[orders.Order]](alice, c, "LIST_ORDERS", "", orders.ListOrdersInput{})
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
		oncetest.Once(t, c, oncetest.WithKey(alice, "h2:UPDATE_ORDER"), "UPDATE_ORDER", o.ID, two)
		three := orders.UpdateOrderInput{Lines: &[]orders.Line{{ItemID: "melon", Quantity: 1}}}
		if _, err := c.Do(alice, "UPDATE_ORDER", o.ID, three); err != nil {
			t.Fatal(err)
		}
		if again, err := c.Do(withKey(alice, "h2:UPDATE_ORDER"), "UPDATE_ORDER", o.ID, two); err != nil || !again.Replayed {
			t.Fatalf("update retried: %+v, %v; want the first answer, replayed", again, err)
		}
		if now, err := socketcaller.Call[orders.Order](alice, c, "GET_ORDER", o.ID, nil); err != nil || now.TotalCents != 1000 || now.Version != 3 {
			t.Fatalf("after the retried update: %+v, %v; want the melon at version 3", now, err)
		}
		oncetest.Once(t, c, oncetest.WithKey(alice, "h3:DELETE_ORDER"), "DELETE_ORDER", o.ID, nil)

		// Vouchers.
		v := orders.Voucher{Code: "SAVE1", DiscountCents: 100}
		oncetest.Once(t, c, oncetest.WithKey(admin, "h4:CREATE_VOUCHER"), "CREATE_VOUCHER", "", v)
		oncetest.Once(t, c, oncetest.WithKey(admin, "h5:UPDATE_VOUCHER"), "UPDATE_VOUCHER", "SAVE1", map[string]any{"discount_cents": 200})
		oncetest.Once(t, c, oncetest.WithKey(admin, "h6:DELETE_VOUCHER"), "DELETE_VOUCHER", "SAVE1", nil)
	})
}
