package orders

import (
	"context"
	"fmt"
	"strings"

	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

// Pricer tells the current unit prices, in cents, of items. An item it
// does not know is either left out of the map or reported with a NOT_FOUND
// *status.Error; either way the order is refused with NOT_FOUND.
type Pricer interface {
	Prices(ctx context.Context, itemIDs []string) (map[string]int64, error)
}

// PricerFunc adapts a function to Pricer.
type PricerFunc func(ctx context.Context, itemIDs []string) (map[string]int64, error)

// Prices calls f.
func (f PricerFunc) Prices(ctx context.Context, itemIDs []string) (map[string]int64, error) {
	return f(ctx, itemIDs)
}

// SocketPricer asks the inventory service over c: action GET_PRICES with
// body {"item_ids": [...]} and result {"prices": {"item id": cents}}. The
// request carries the context's meta, so inventory sees the orders
// caller's principal. A NOT_FOUND from inventory comes back as NOT_FOUND
// naming the unknown items (inventory's message and details {"item_ids"},
// or, when inventory does not list them, all the items asked for); UNAVAILABLE, DEADLINE_EXCEEDED, CANCELED and
// RESOURCE_EXHAUSTED pass through; any other failure is INTERNAL.
func SocketPricer(c *socketcaller.Client) Pricer {
	return PricerFunc(func(ctx context.Context, itemIDs []string) (map[string]int64, error) {
		type pricesResult struct {
			Prices map[string]int64 `json:"prices"`
		}
		res, err := socketcaller.Call[pricesResult](ctx, c, "GET_PRICES", "", map[string]any{"item_ids": itemIDs})
		if err == nil {
			return res.Prices, nil
		}
		e := status.AsError(err)
		switch e.Code {
		case socket.CodeNotFound:
			if _, named := e.Details["item_ids"]; named {
				// Inventory names the unknown items in its message and details.
				return nil, socket.Errorf(socket.CodeNotFound, "%s", e.Message).WithDetails(e.Details)
			}
			return nil, socket.Errorf(socket.CodeNotFound, "no price for some of the items %s: %s", strings.Join(itemIDs, ", "), e.Message).
				WithDetails(map[string]any{"item_ids": itemIDs})
		case socket.CodeUnavailable, socket.CodeDeadlineExceeded, socket.CodeCanceled, socket.CodeResourceExhausted:
			return nil, socket.Errorf(e.Code, "inventory: %s", e.Message)
		}
		// Not %w: the inventory's code must not become the caller's.
		return nil, fmt.Errorf("inventory GET_PRICES: %v", err) //nolint:errorlint // see above
	})
}
