package inventory_test

import (
	"encoding/json"
	"testing"

	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

func TestEveryItemChangeIsPublished(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		c := serve(t, st)
		next := sockettest.Events(t, c, "items/*")
		admin := sockettest.As(t, "v1", "root", "admin")
		var seq uint64
		// want checks the next event: items/book, the next seq, public,
		// and the item as GET_ITEM answers now (or the deleted marker).
		want := func(step string, deleted bool) {
			t.Helper()
			seq++
			e := next()
			if e.Topic != "items/book" || e.Seq != seq || e.Gap || !e.Visibility.Public {
				t.Fatalf("%s: event %+v, want items/book seq %d, public", step, e, seq)
			}
			wantData := `{"id":"book","deleted":true}`
			if !deleted {
				got, err := c.Request(admin, "GET_ITEM", "book", nil)
				if err != nil {
					t.Fatal(err)
				}
				wantData = string(got)
			}
			if string(e.Data) != wantData {
				t.Fatalf("%s: data %s, want %s", step, e.Data, wantData)
			}
		}
		do := func(action, id string, body string) {
			t.Helper()
			if _, err := c.Request(admin, action, id, json.RawMessage(body)); err != nil {
				t.Fatalf("%s %s: %v", action, id, err)
			}
		}
		do("CREATE_ITEM", "", `{"id":"book","name":"Book","price_cents":1500,"stock":10}`)
		want("create", false)
		do("UPDATE_ITEM", "book", `{"price_cents":1600}`)
		want("price", false)
		do("RESERVE_STOCK", "r1", `{"lines":[{"item_id":"book","quantity":2}]}`)
		want("reserve", false)
		do("RESERVE_STOCK", "r1", `{"lines":[{"item_id":"book","quantity":2}]}`) // a replay changes nothing
		do("RELEASE_STOCK", "r1", ``)
		want("release", false) // seq 4: the replay published nothing
		do("RELEASE_STOCK", "r1", ``)
		do("DELETE_ITEM", "book", ``)
		want("delete", true)
		if _, err := c.Request(admin, "GET_ITEM", "book", nil); status.CodeOf(err) != socket.CodeNotFound {
			t.Fatalf("GET_ITEM after delete: %v", err)
		}
	})
}
