package inventory_test

import (
	"encoding/json"
	"testing"

	"github.com/streamgate/streamgate/services/internal/once/oncetest"
	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// TestSameKeyWritesApplyOnce: item writes retried with their idempotency
// key (as the gateway sends a client's retry after a lost answer) apply
// once and answer the first result, marked replayed; the key with another
// body is refused.
func TestSameKeyWritesApplyOnce(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		c := serve(t, st)
		admin := sockettest.As(t, "v1", "root", "admin")

		// Without an id each create makes one: one key, one item.
		create := oncetest.WithKey(admin, "h1:CREATE_ITEM")
		res := oncetest.Once(t, c, create, "CREATE_ITEM", "", inventory.CreateInput{Name: "Lamp", PriceCents: ptr(int64(900)), Stock: 3})
		var it inventory.Item
		if err := json.Unmarshal(res, &it); err != nil {
			t.Fatal(err)
		}
		items, err := caller.Call[inventory.Page](admin, c, "LIST_ITEMS", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(items.Items) != 1 || items.Items[0].ID != it.ID {
			t.Fatalf("items after creates with one key: %+v, want only %s", items.Items, it.ID)
		}
		_, err = c.Do(create, "CREATE_ITEM", "", inventory.CreateInput{Name: "Desk", PriceCents: ptr(int64(900))})
		if e := status.AsError(err); e == nil || e.Code != socket.CodeConflict || e.Details[socket.DetailReason] != "idempotency_key_reused" {
			t.Fatalf("the key with another body: %v, want CONFLICT idempotency_key_reused", err)
		}

		// An update retried after another change leaves that change alone.
		set := oncetest.WithKey(admin, "h2:UPDATE_ITEM")
		oncetest.Once(t, c, set, "UPDATE_ITEM", it.ID, inventory.UpdateInput{Stock: ptr(int64(10))})
		if _, err := c.Do(admin, "UPDATE_ITEM", it.ID, inventory.UpdateInput{Stock: ptr(int64(7))}); err != nil {
			t.Fatal(err)
		}
		if again, err := c.Do(set, "UPDATE_ITEM", it.ID, inventory.UpdateInput{Stock: ptr(int64(10))}); err != nil || !again.Replayed {
			t.Fatalf("update retried: %+v, %v; want the first answer, replayed", again, err)
		}
		if now, err := caller.Call[inventory.Item](admin, c, "GET_ITEM", it.ID, nil); err != nil || now.Stock != 7 {
			t.Fatalf("after the retried update: %+v, %v; want the later stock 7", now, err)
		}
		oncetest.Once(t, c, oncetest.WithKey(admin, "h3:DELETE_ITEM"), "DELETE_ITEM", it.ID, nil)
	})
}
