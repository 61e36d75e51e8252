package inventory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// serve starts an inventory server on st and returns a client to it; both
// stop at cleanup.
func serve(t *testing.T, st inventory.Store) *caller.Client {
	t.Helper()
	srv, err := socket.NewServer(socket.Config{Name: "inventory"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := inventory.Register(srv, st); err != nil {
		t.Fatal(err)
	}
	return sockettest.Start(t, srv)
}

// seed creates items through the socket as an admin.
func seed(t *testing.T, c *caller.Client, items ...inventory.Item) {
	t.Helper()
	admin := sockettest.As(t, "v1", "root", "admin")
	for _, it := range items {
		in := inventory.CreateInput{ID: it.ID, Name: it.Name, PriceCents: ptr(it.PriceCents), Stock: it.Stock}
		if _, err := c.Request(admin, "CREATE_ITEM", "", in); err != nil {
			t.Fatalf("seed %s: %v", it.ID, err)
		}
	}
}

func TestCRUDOverTheSocket(t *testing.T) {
	t.Parallel()
	c := serve(t, inventory.NewMemoryStore())
	admin, alice, anon := sockettest.As(t, "v1", "root", "admin"), sockettest.As(t, "v1", "alice"), sockettest.As(t, "v1", "anonymous")

	made, err := caller.Call[inventory.Item](admin, c, "CREATE_ITEM", "", json.RawMessage(`{"name":"  Mug ","price_cents":900}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(made.ID) != len("itm_")+12 || made.ID[:4] != "itm_" || made.Name != "Mug" || made.PriceCents != 900 || made.Stock != 0 {
		t.Fatalf("CREATE_ITEM = %+v", made)
	}
	chosen, err := caller.Call[inventory.Item](admin, c, "CREATE_ITEM", "", json.RawMessage(`{"id":"tea-1","name":"Tea","price_cents":0,"stock":4}`))
	if want := (inventory.Item{ID: "tea-1", Name: "Tea", Stock: 4}); err != nil || chosen != want {
		t.Fatalf("CREATE_ITEM with an id = %+v, %v; want %+v", chosen, err, want)
	}
	if got, err := caller.Call[inventory.Item](anon, c, "GET_ITEM", made.ID, nil); err != nil || got != made {
		t.Fatalf("GET_ITEM as anonymous = %+v, %v", got, err)
	}
	updated, err := caller.Call[inventory.Item](admin, c, "UPDATE_ITEM", "tea-1", json.RawMessage(`{"stock":7}`))
	if want := (inventory.Item{ID: "tea-1", Name: "Tea", Stock: 7}); err != nil || updated != want {
		t.Fatalf("UPDATE_ITEM = %+v, %v; want %+v", updated, err, want)
	}
	deleted, err := caller.Call[inventory.Item](admin, c, "DELETE_ITEM", "tea-1", nil)
	if err != nil || deleted != updated {
		t.Fatalf("DELETE_ITEM = %+v, %v; want %+v", deleted, err, updated)
	}

	tests := []struct {
		name   string
		ctx    context.Context
		action string
		id     string
		body   string
		code   status.Code
	}{
		{"create as a user", alice, "CREATE_ITEM", "", `{"name":"x","price_cents":1}`, socket.CodePermissionDenied},
		{"create as anonymous", anon, "CREATE_ITEM", "", `{"name":"x","price_cents":1}`, socket.CodePermissionDenied},
		{"update as a user", alice, "UPDATE_ITEM", made.ID, `{"stock":1}`, socket.CodePermissionDenied},
		{"delete as a user", alice, "DELETE_ITEM", made.ID, ``, socket.CodePermissionDenied},
		// The role is checked before the body is read: a malformed body
		// tells a caller without the role nothing.
		{"create as a user, body malformed", alice, "CREATE_ITEM", "", `{"colour":`, socket.CodePermissionDenied},
		{"taken id", admin, "CREATE_ITEM", "", `{"id":"` + made.ID + `","name":"x","price_cents":1}`, socket.CodeAlreadyExists},
		{"no name", admin, "CREATE_ITEM", "", `{"name":"  ","price_cents":1}`, socket.CodeInvalidArgument},
		{"long name", admin, "CREATE_ITEM", "", `{"name":"` + strings.Repeat("é", 201) + `","price_cents":1}`, socket.CodeInvalidArgument},
		{"no price", admin, "CREATE_ITEM", "", `{"name":"x"}`, socket.CodeInvalidArgument},
		{"negative price", admin, "CREATE_ITEM", "", `{"name":"x","price_cents":-1}`, socket.CodeInvalidArgument},
		{"fractional price", admin, "CREATE_ITEM", "", `{"name":"x","price_cents":1.5}`, socket.CodeInvalidArgument},
		{"negative stock", admin, "CREATE_ITEM", "", `{"name":"x","price_cents":1,"stock":-1}`, socket.CodeInvalidArgument},
		{"bad id", admin, "CREATE_ITEM", "", `{"id":"a/b","name":"x","price_cents":1}`, socket.CodeInvalidArgument},
		{"unknown field", admin, "CREATE_ITEM", "", `{"name":"x","price_cents":1,"colour":"red"}`, socket.CodeInvalidArgument},
		{"update negative stock", admin, "UPDATE_ITEM", made.ID, `{"stock":-3}`, socket.CodeInvalidArgument},
		{"update negative price", admin, "UPDATE_ITEM", made.ID, `{"price_cents":-3}`, socket.CodeInvalidArgument},
		{"update empty name", admin, "UPDATE_ITEM", made.ID, `{"name":""}`, socket.CodeInvalidArgument},
		{"update unknown", admin, "UPDATE_ITEM", "nope", `{"stock":1}`, socket.CodeNotFound},
		{"update without id", admin, "UPDATE_ITEM", "", `{"stock":1}`, socket.CodeInvalidArgument},
		{"delete again", admin, "DELETE_ITEM", "tea-1", ``, socket.CodeNotFound},
		{"get deleted", anon, "GET_ITEM", "tea-1", ``, socket.CodeNotFound},
		{"get without id", anon, "GET_ITEM", "", ``, socket.CodeInvalidArgument},
		{"page too large", anon, "LIST_ITEMS", "", `{"page_size":1001}`, socket.CodeInvalidArgument},
		{"negative page", anon, "LIST_ITEMS", "", `{"page_size":-1}`, socket.CodeInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Request(tc.ctx, tc.action, tc.id, json.RawMessage(tc.body))
			if status.CodeOf(err) != tc.code {
				t.Fatalf("%s: %v, want %s", tc.action, err, tc.code)
			}
		})
	}
	if got, _ := caller.Call[inventory.Item](anon, c, "GET_ITEM", made.ID, nil); got != made {
		t.Fatalf("failed writes changed the item: %+v, want %+v", got, made)
	}
}

func TestListItems(t *testing.T) {
	t.Parallel()
	c := serve(t, inventory.NewMemoryStore())
	for i := range 7 {
		name := "plate"
		if i%2 == 0 {
			name = "cup"
		}
		seed(t, c, inventory.Item{ID: string(rune('a' + i)), Name: name, PriceCents: int64(i)})
	}
	anon := sockettest.As(t, "v1", "anonymous")
	tests := []struct {
		name  string
		in    inventory.ListInput
		pages [][]string
	}{
		{"default page size", inventory.ListInput{}, [][]string{{"a", "b", "c", "d", "e", "f", "g"}}},
		{"pages of 3", inventory.ListInput{PageSize: 3}, [][]string{{"a", "b", "c"}, {"d", "e", "f"}, {"g"}}},
		{"exact pages", inventory.ListInput{Name: "plate", PageSize: 3}, [][]string{{"b", "d", "f"}}},
		{"filtered pages", inventory.ListInput{Name: "cu", PageSize: 2}, [][]string{{"a", "c"}, {"e", "g"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			var got [][]string
			for {
				p, err := caller.Call[inventory.Page](anon, c, "LIST_ITEMS", "", in)
				if err != nil {
					t.Fatal(err)
				}
				ids := []string{}
				for _, it := range p.Items {
					ids = append(ids, it.ID)
				}
				got = append(got, ids)
				if p.NextPageToken == "" || len(got) > 5 {
					break
				}
				in.PageToken = p.NextPageToken
			}
			if !reflect.DeepEqual(got, tc.pages) {
				t.Fatalf("pages %v, want %v", got, tc.pages)
			}
		})
	}
	raw, err := c.Request(anon, "LIST_ITEMS", "", inventory.ListInput{Name: "nothing"})
	if err != nil || string(raw) != `{"items":[]}` {
		t.Fatalf("empty LIST_ITEMS = %s, %v", raw, err)
	}
}

func TestAvailabilityAndReservations(t *testing.T) {
	t.Parallel()
	st := inventory.NewMemoryStore()
	c := serve(t, st)
	seed(t, c,
		inventory.Item{ID: "a", Name: "A", PriceCents: 100, Stock: 5},
		inventory.Item{ID: "b", Name: "B", PriceCents: 250, Stock: 1},
	)
	user := sockettest.As(t, "v1", "alice")

	type result struct {
		code    status.Code
		result  string         // JSON of the result, when ok
		missing []any          // details.missing, when out of stock
		details map[string]any // other details to match
	}
	covered := `{"lines":[{"item_id":"a","quantity":2},{"item_id":"b","quantity":1}]}`
	short := `{"lines":[{"item_id":"a","quantity":2},{"item_id":"x","quantity":1},{"item_id":"a","quantity":4}]}`
	missing := []any{
		map[string]any{"item_id": "a", "requested": 6.0, "in_stock": 5.0},
		map[string]any{"item_id": "x", "requested": 1.0, "in_stock": 0.0},
	}
	inOrder := `{"order":{"id":"ord_1","status":"pending","total_cents":450,"lines":[{"item_id":"a","quantity":1,"unit_price_cents":100},{"item_id":"a","quantity":1}]}}`
	tests := []struct {
		name   string
		action string
		body   string
		want   result
	}{
		{"check covered", "CHECK_AVAILABLE", covered, result{result: `{"available":true,"missing":[]}`}},
		{"check short sums duplicate lines", "CHECK_AVAILABLE", short, result{result: `{"available":false,"missing":[{"item_id":"a","requested":6,"in_stock":5},{"item_id":"x","requested":1,"in_stock":0}]}`}},
		{"check an order", "CHECK_AVAILABLE", inOrder, result{result: `{"available":true,"missing":[]}`}},
		{"check an order that is short", "CHECK_AVAILABLE", `{"order":{"lines":[{"item_id":"b","quantity":2}],"extra":{"x":1}}}`, result{result: `{"available":false,"missing":[{"item_id":"b","requested":2,"in_stock":1}]}`}},
		{"require covered", "REQUIRE_AVAILABLE", inOrder, result{result: `{"available":true,"missing":[]}`}},
		{"require short", "REQUIRE_AVAILABLE", short, result{code: socket.CodeFailedPrecondition, missing: missing}},
		{"reserve short changes nothing", "RESERVE_STOCK", short, result{code: socket.CodeFailedPrecondition, missing: missing}},
		{"reserve an order", "RESERVE_STOCK", inOrder, result{result: `{"reservation_id":"reserve an order","reserved":[{"item_id":"a","quantity":2}],"status":"held","version":1}`}},
		{"reserve lines", "RESERVE_STOCK", covered, result{result: `{"reservation_id":"reserve lines","reserved":[{"item_id":"a","quantity":2},{"item_id":"b","quantity":1}],"status":"held","version":1}`}},
		{"then b is gone", "REQUIRE_AVAILABLE", `{"lines":[{"item_id":"b","quantity":1}]}`, result{code: socket.CodeFailedPrecondition, missing: []any{map[string]any{"item_id": "b", "requested": 1.0, "in_stock": 0.0}}}},
		{"empty body", "CHECK_AVAILABLE", ``, result{code: socket.CodeInvalidArgument}},
		{"no lines", "RESERVE_STOCK", `{"lines":[]}`, result{code: socket.CodeInvalidArgument}},
		{"order without lines", "RESERVE_STOCK", `{"order":{"id":"o"}}`, result{code: socket.CodeInvalidArgument}},
		{"zero quantity", "CHECK_AVAILABLE", `{"lines":[{"item_id":"a","quantity":0}]}`, result{code: socket.CodeInvalidArgument}},
		{"no item id", "RESERVE_STOCK", `{"lines":[{"quantity":1}]}`, result{code: socket.CodeInvalidArgument}},
		{"both shapes", "CHECK_AVAILABLE", `{"lines":[{"item_id":"a","quantity":1}],"order":{"lines":[]}}`, result{code: socket.CodeInvalidArgument}},
		{"unknown top-level field", "CHECK_AVAILABLE", `{"lines":[{"item_id":"a","quantity":1}],"extra":1}`, result{code: socket.CodeInvalidArgument}},
		{"unknown line field at the top", "CHECK_AVAILABLE", `{"lines":[{"item_id":"a","quantity":1,"x":1}]}`, result{code: socket.CodeInvalidArgument}},
		{"bad order line", "RESERVE_STOCK", `{"order":{"lines":[{"item_id":"a","quantity":"2"}]}}`, result{code: socket.CodeInvalidArgument, details: map[string]any{"field": "order.lines.quantity"}}},
		{"order not an object", "RESERVE_STOCK", `{"order":5}`, result{code: socket.CodeInvalidArgument}},
		{"quantity overflow", "CHECK_AVAILABLE", `{"lines":[{"item_id":"a","quantity":9223372036854775807},{"item_id":"a","quantity":1}]}`, result{code: socket.CodeInvalidArgument}},
	}
	for _, tc := range tests {
		// Not parallel: the cases run in order against one stock.
		t.Run(tc.name, func(t *testing.T) {
			id := ""
			if tc.action == "RESERVE_STOCK" {
				id = tc.name // the reservation id
			}
			raw, err := c.Request(user, tc.action, id, json.RawMessage(tc.body))
			if status.CodeOf(err) != tc.want.code {
				t.Fatalf("%s: %v, want code %q", tc.action, err, tc.want.code)
			}
			if err == nil {
				if tc.action == "RESERVE_STOCK" {
					raw = withoutCreatedAt(t, raw)
				}
				if string(raw) != tc.want.result {
					t.Fatalf("%s = %s, want %s", tc.action, raw, tc.want.result)
				}
				return
			}
			e := status.AsError(err)
			if tc.want.missing != nil {
				if e.Message != "out of stock" || e.Details["reason"] != inventory.ReasonOutOfStock || !reflect.DeepEqual(e.Details["missing"], tc.want.missing) {
					t.Fatalf("%s: %q %v, want out of stock with missing %v", tc.action, e.Message, e.Details, tc.want.missing)
				}
			}
			for k, v := range tc.want.details {
				if e.Details[k] != v {
					t.Fatalf("%s: details %v, want %s=%v", tc.action, e.Details, k, v)
				}
			}
		})
	}
	for id, want := range map[string]int64{"a": 1, "b": 0} {
		if got := stockOf(t, st, id); got != want {
			t.Errorf("stock of %s = %d, want %d", id, got, want)
		}
	}
}

// withoutCreatedAt returns a reservation's JSON without its created_at,
// keys sorted.
func withoutCreatedAt(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, m["created_at"].(string)); err != nil {
		t.Fatalf("created_at of %s: %v", raw, err)
	}
	delete(m, "created_at")
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReservationRequestsRefused(t *testing.T) {
	t.Parallel()
	st := inventory.NewMemoryStore()
	c := serve(t, st)
	seed(t, c, inventory.Item{ID: "a", Name: "A", PriceCents: 100, Stock: 5})
	user, admin := sockettest.As(t, "v1", "alice"), sockettest.As(t, "v1", "root", "admin")
	tests := []struct {
		name   string
		ctx    context.Context
		action string
		id     string
		body   string
		code   status.Code
	}{
		{"release no lines", user, "RELEASE_STOCK", "p", `{"lines":[]}`, socket.CodeInvalidArgument},
		{"release zero quantity", user, "RELEASE_STOCK", "p", `{"lines":[{"item_id":"a","quantity":0}]}`, socket.CodeInvalidArgument},
		{"release both shapes", user, "RELEASE_STOCK", "p", `{"lines":[{"item_id":"a","quantity":1}],"order":{"lines":[]}}`, socket.CodeInvalidArgument},
		{"release bad order line", user, "RELEASE_STOCK", "p", `{"order":{"lines":[{"item_id":"a","quantity":"2"}]}}`, socket.CodeInvalidArgument},
		{"release without an id", user, "RELEASE_STOCK", "", `{"lines":[{"item_id":"a","quantity":1}]}`, socket.CodeInvalidArgument},
		{"reserve a long id", user, "RESERVE_STOCK", strings.Repeat("x", 256), `{"lines":[{"item_id":"a","quantity":1}]}`, socket.CodeInvalidArgument},
		{"reserve an id with a control character", user, "RESERVE_STOCK", "p\n1", `{"lines":[{"item_id":"a","quantity":1}]}`, socket.CodeInvalidArgument},
		{"list as a user", user, "LIST_RESERVATIONS", "", ``, socket.CodePermissionDenied},
		{"list a bad status", admin, "LIST_RESERVATIONS", "", `{"status":"unknown"}`, socket.CodeInvalidArgument},
		{"list a page too large", admin, "LIST_RESERVATIONS", "", `{"page_size":1001}`, socket.CodeInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Request(tc.ctx, tc.action, tc.id, json.RawMessage(tc.body))
			if status.CodeOf(err) != tc.code {
				t.Fatalf("%s: %v, want %s", tc.action, err, tc.code)
			}
		})
	}
	if got := stockOf(t, st, "a"); got != 5 {
		t.Fatalf("stock = %d, want 5", got)
	}
}

func TestGetPrices(t *testing.T) {
	t.Parallel()
	c := serve(t, inventory.NewMemoryStore())
	seed(t, c, inventory.Item{ID: "a", Name: "A", PriceCents: 100}, inventory.Item{ID: "b", Name: "B", PriceCents: 0})
	ctx := sockettest.As(t, "v1", "svc-orders")
	got, err := caller.Call[inventory.Prices](ctx, c, "GET_PRICES", "", inventory.PricesInput{ItemIDs: []string{"b", "a", "b"}})
	if want := map[string]int64{"a": 100, "b": 0}; err != nil || !reflect.DeepEqual(got.Prices, want) {
		t.Fatalf("GET_PRICES = %+v, %v; want %v", got, err, want)
	}
	tests := []struct {
		name    string
		ids     []string
		code    status.Code
		message string
	}{
		{"unknown ids named", []string{"a", "x", "y", "x"}, socket.CodeNotFound, `no items "x", "y"`},
		{"no ids", nil, socket.CodeInvalidArgument, ""},
		{"empty id", []string{"a", ""}, socket.CodeInvalidArgument, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Request(ctx, "GET_PRICES", "", inventory.PricesInput{ItemIDs: tc.ids})
			if status.CodeOf(err) != tc.code {
				t.Fatalf("GET_PRICES: %v, want %s", err, tc.code)
			}
			if tc.message != "" && status.AsError(err).Message != tc.message {
				t.Fatalf("message %q, want %q", status.AsError(err).Message, tc.message)
			}
		})
	}
}

func TestActionCatalogue(t *testing.T) {
	t.Parallel()
	c := serve(t, inventory.NewMemoryStore())
	d, err := c.Describe(sockettest.As(t, "v1", "anonymous"))
	if err != nil {
		t.Fatal(err)
	}
	type kind struct{ read, idempotent bool }
	want := map[string]kind{
		"GET_ITEM": {true, true}, "LIST_ITEMS": {true, true}, "CHECK_AVAILABLE": {true, true},
		"REQUIRE_AVAILABLE": {true, true}, "GET_PRICES": {true, true},
		"CREATE_ITEM": {false, false}, "UPDATE_ITEM": {false, true}, "DELETE_ITEM": {false, true},
		"RESERVE_STOCK": {false, true}, "RELEASE_STOCK": {false, true}, "LIST_RESERVATIONS": {true, true},
	}
	got := map[string]kind{}
	for name, a := range d {
		got[name] = kind{a.Read, a.Idempotent}
		if a.Doc == "" {
			t.Errorf("%s has no doc", name)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("catalogue %v, want %v", got, want)
	}
}

// TestReserveConcurrentlyOverTheSocket races 40 callers for 10 in stock on
// every store kind, end to end.
func TestReserveConcurrentlyOverTheSocket(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		c := serve(t, st)
		seed(t, c, inventory.Item{ID: "hot", Name: "Hot", PriceCents: 1, Stock: 10}, inventory.Item{ID: "cold", Name: "Cold", PriceCents: 1, Stock: 40})
		ctx := sockettest.As(t, "v1", "alice")
		var ok, out atomic.Int64
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				// "cold" sorts first and always has stock: the lines that
				// fail on "hot" must leave it unchanged.
				body := inventory.LinesInput{Lines: []inventory.Line{{ItemID: "cold", Quantity: 1}, {ItemID: "hot", Quantity: 1}}}
				_, err := c.Request(ctx, "RESERVE_STOCK", fmt.Sprint("pur_", i), body)
				switch status.CodeOf(err) {
				case "":
					ok.Add(1)
				case socket.CodeFailedPrecondition:
					out.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 10 || out.Load() != 30 {
			t.Errorf("%d reserved, %d out of stock; want 10 and 30", ok.Load(), out.Load())
		}
		for id, want := range map[string]int64{"hot": 0, "cold": 30} {
			if got := stockOf(t, st, id); got != want {
				t.Errorf("stock of %s = %d, want %d", id, got, want)
			}
		}
	})
}
