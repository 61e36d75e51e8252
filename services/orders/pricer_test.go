package orders_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// startInventory serves a stub inventory with GET_PRICES over the test
// catalogue, answering as inventory does: unknown items are NOT_FOUND with
// details {"item_ids": unknown}; "ghost" is NOT_FOUND without details,
// "secret" is refused and "offline" is UNAVAILABLE. It records who asked.
func startInventory(t *testing.T) (*socketcaller.Client, <-chan string) {
	t.Helper()
	srv, err := socket.NewServer(socket.Config{Name: "inventory"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	type in struct {
		ItemIDs []string `json:"item_ids"`
	}
	type out struct {
		Prices map[string]int64 `json:"prices"`
	}
	askers := make(chan string, 100)
	h := socket.Typed(func(ctx context.Context, _ string, req in) (out, error) {
		askers <- socket.MetaFrom(ctx).Principal.Subject
		res := out{Prices: map[string]int64{}}
		var missing []string
		for _, id := range req.ItemIDs {
			switch p, ok := prices[id]; {
			case id == "secret":
				return out{}, socket.Errorf(socket.CodePermissionDenied, "this key may not read prices")
			case id == "ghost":
				return out{}, socket.Errorf(socket.CodeNotFound, "gone")
			case id == "offline":
				return out{}, socket.Errorf(socket.CodeUnavailable, "warehouse offline")
			case ok:
				res.Prices[id] = p
			default:
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return out{}, socket.Errorf(socket.CodeNotFound, "no items %s", strings.Join(missing, ", ")).
				WithDetails(map[string]any{"item_ids": missing})
		}
		return res, nil
	})
	if err := srv.Handle("GET_PRICES", h, socket.Read()); err != nil {
		t.Fatal(err)
	}
	return sockettest.Start(t, srv), askers
}

func TestSocketPricer(t *testing.T) {
	t.Parallel()
	inv, askers := startInventory(t)
	pricer := orders.SocketPricer(inv)
	ctx := sockettest.As(t, "v1", "alice")

	got, err := pricer.Prices(ctx, []string{"apple", "melon"})
	if err != nil || len(got) != 2 || got["apple"] != 150 || got["melon"] != 1000 {
		t.Fatalf("prices: %v %v", got, err)
	}
	if who := <-askers; who != "alice" {
		t.Fatalf("inventory saw %q, want the caller's principal", who)
	}
	for _, tc := range []struct {
		name    string
		items   []string
		code    status.Code
		message string
		named   []any // details item_ids
	}{
		{"not found", []string{"apple", "kiwi", "fig"}, socket.CodeNotFound, "no items kiwi, fig", []any{"kiwi", "fig"}},
		{"not found, unnamed", []string{"apple", "ghost"}, socket.CodeNotFound, "no price for some of the items apple, ghost: gone", []any{"apple", "ghost"}},
		{"unavailable", []string{"offline"}, socket.CodeUnavailable, "inventory: warehouse offline", nil},
		{"refused is internal", []string{"secret"}, socket.CodeInternal, "internal error", nil},
	} {
		_, err := pricer.Prices(ctx, tc.items)
		e := wantErr(t, err, tc.code, "")
		if e.Message != tc.message {
			t.Errorf("%s: message %q, want %q", tc.name, e.Message, tc.message)
		}
		if tc.named != nil {
			var named []any
			switch ids := e.Details["item_ids"].(type) {
			case []any:
				named = ids
			case []string:
				for _, id := range ids {
					named = append(named, id)
				}
			}
			if !slices.Equal(named, tc.named) {
				t.Errorf("%s: details %v, want item_ids %v", tc.name, e.Details, tc.named)
			}
		}
	}
}

// TestOrdersPricedByInventory runs orders against the stub inventory over
// two sockets, as deployed.
func TestOrdersPricedByInventory(t *testing.T) {
	t.Parallel()
	inv, _ := startInventory(t)
	c := startService(t, orders.NewMemoryStore(), orders.SocketPricer(inv))
	alice := sockettest.As(t, "v1", "alice")
	o, err := socketcaller.Call[orders.Order](alice, c, "CREATE_ORDER", "", orders.CreateOrderInput{Lines: []orders.Line{{ItemID: "apple", Quantity: 2}, {ItemID: "apple", Quantity: 1}, {ItemID: "pear", Quantity: 1}}})
	if err != nil || o.TotalCents != 650 {
		t.Fatalf("create: %+v %v", o, err)
	}
	_, err = c.Request(alice, "CREATE_ORDER", "", orders.CreateOrderInput{Lines: []orders.Line{{ItemID: "fig", Quantity: 1}}})
	if e := wantErr(t, err, socket.CodeNotFound, ""); !strings.Contains(e.Message, "fig") {
		t.Fatalf("message %q does not name the item", e.Message)
	}
	_, err = c.Request(alice, "UPDATE_ORDER", o.ID, orders.UpdateOrderInput{Lines: &[]orders.Line{{ItemID: "secret", Quantity: 1}}})
	if e := wantErr(t, err, socket.CodeInternal, ""); e.Message != "internal error" {
		t.Fatalf("an inventory refusal leaked: %q", e.Message)
	}
}
