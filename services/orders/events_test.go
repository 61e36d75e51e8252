package orders_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/streamgate/streamgate/services/orders"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

func TestEveryOrderChangeIsPublished(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		next := sockettest.Events(t, c, "orders/*")
		alice := sockettest.As(t, "v1", "alice")
		// want checks the next event: the order's topic, visible to alice
		// and admins only, with the order as GET_ORDER answers now.
		want := func(step, id string, status orders.Status, version int64) {
			t.Helper()
			e := next()
			if e.Topic != "orders/"+id || e.Gap || e.Visibility.Public || !slices.Equal(e.Visibility.Subjects, []string{"alice"}) || !slices.Equal(e.Visibility.Roles, []string{"admin"}) {
				t.Fatalf("%s: event %+v, want orders/%s for alice and admins", step, e, id)
			}
			var got orders.Order
			if err := json.Unmarshal(e.Data, &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != status || got.Version != version {
				t.Fatalf("%s: data %s, want status %s version %d", step, e.Data, status, version)
			}
			now, err := c.Request(alice, "GET_ORDER", id, nil)
			if err != nil || string(now) != string(e.Data) {
				t.Fatalf("%s: event data %s, GET_ORDER %s (%v)", step, e.Data, now, err)
			}
		}
		o, err := socketcaller.Call[orders.Order](alice, c, "CREATE_ORDER", "", json.RawMessage(`{"lines":[{"item_id":"apple","quantity":1}]}`))
		if err != nil {
			t.Fatal(err)
		}
		want("create", o.ID, orders.StatusPending, 1)
		if _, err := c.Request(alice, "UPDATE_ORDER", o.ID, json.RawMessage(`{"lines":[{"item_id":"apple","quantity":2}]}`)); err != nil {
			t.Fatal(err)
		}
		want("update", o.ID, orders.StatusPending, 2)
		buy := withKey(alice, "buy-1")
		snap, err := socketcaller.Call[orders.Order](buy, c, "BEGIN_PURCHASE", o.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		want("begin", o.ID, orders.StatusPaying, 3)
		if _, err := c.Request(alice, "MARK_PAID", o.ID, paidFor(snap, "pay_1")); err != nil {
			t.Fatal(err)
		}
		want("paid", o.ID, orders.StatusPaid, 4)
		if _, err := c.Request(alice, "ABORT_PURCHASE", o.ID, json.RawMessage(`{"purchase_id":"buy-1"}`)); err != nil {
			t.Fatal(err) // nothing to abort: no event
		}

		gone, err := socketcaller.Call[orders.Order](alice, c, "CREATE_ORDER", "", json.RawMessage(`{"lines":[{"item_id":"pear","quantity":1}]}`))
		if err != nil {
			t.Fatal(err)
		}
		want("second create", gone.ID, orders.StatusPending, 1) // after paid: the abort published nothing
		if _, err := c.Request(alice, "DELETE_ORDER", gone.ID, nil); err != nil {
			t.Fatal(err)
		}
		e := next()
		if e.Topic != "orders/"+gone.ID || string(e.Data) != `{"id":"`+gone.ID+`","deleted":true}` || !slices.Equal(e.Visibility.Subjects, []string{"alice"}) {
			t.Fatalf("delete: event %+v data %s", e, e.Data)
		}
	})
}
