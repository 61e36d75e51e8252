package reconcile_test

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/streamgate/streamgate/services/socket"
)

// Order is the orders service's Order as the purchase contract defines it.
type Order struct {
	ID             string `json:"id"`
	UserID         string `json:"user_id"`
	TotalCents     int64  `json:"total_cents"`
	Status         string `json:"status"`
	PaymentID      string `json:"payment_id,omitempty"`
	Version        int64  `json:"version"`
	PurchaseID     string `json:"purchase_id,omitempty"`
	LeaseExpiresAt string `json:"lease_expires_at,omitempty"`
}

// contractOrders is an orders service holding to the purchase contract's
// GET_ORDER, LIST_ORDERS, MARK_PAID and ABORT_PURCHASE, served on a real
// socket: the reconciler's tests run against it until the orders service
// has the contract.
type contractOrders struct {
	mu     sync.Mutex // guards orders
	orders map[string]Order
}

func newContractOrders() *contractOrders { return &contractOrders{orders: map[string]Order{}} }

// put stores an order as it is.
func (c *contractOrders) put(o Order) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.orders[o.ID] = o
}

func (c *contractOrders) get(id string) Order {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.orders[id]
}

func (c *contractOrders) snapshot() map[string]Order {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]Order{}
	for k, v := range c.orders {
		m[k] = v
	}
	return m
}

func (c *contractOrders) register(srv *socket.Server) error {
	admin := func(ctx context.Context) error {
		if !socket.MetaFrom(ctx).Principal.HasRole("admin") {
			return socket.Errorf(socket.CodeNotFound, "no such order")
		}
		return nil
	}
	type listIn struct {
		Status    string `json:"status"`
		UserID    string `json:"user_id"`
		PageSize  int    `json:"page_size"`
		PageToken string `json:"page_token"`
	}
	type page struct {
		Items         []Order `json:"items"`
		NextPageToken string  `json:"next_page_token,omitempty"`
	}
	type markPaidIn struct {
		PaymentID   string `json:"payment_id"`
		AmountCents int64  `json:"amount_cents"`
		Version     int64  `json:"version"`
		PurchaseID  string `json:"purchase_id"`
	}
	type abortIn struct {
		PurchaseID string `json:"purchase_id"`
	}
	conflict := func(code socket.Code, reason string) error {
		return socket.Errorf(code, "%s", reason).WithDetails(map[string]any{socket.DetailReason: reason})
	}
	handlers := map[string]socket.Handler{
		"GET_ORDER": socket.Typed(func(ctx context.Context, id string, _ struct{}) (Order, error) {
			if err := admin(ctx); err != nil {
				return Order{}, err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			o, ok := c.orders[id]
			if !ok {
				return Order{}, socket.Errorf(socket.CodeNotFound, "no order %q", id)
			}
			return o, nil
		}),
		"LIST_ORDERS": socket.Typed(func(ctx context.Context, _ string, in listIn) (page, error) {
			if err := admin(ctx); err != nil {
				return page{}, err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			var ids []string
			for id, o := range c.orders {
				if (in.Status == "" || o.Status == in.Status) && (in.UserID == "" || o.UserID == in.UserID) && id > in.PageToken {
					ids = append(ids, id)
				}
			}
			slices.Sort(ids)
			p := page{Items: []Order{}}
			size := max(in.PageSize, 1)
			for i, id := range ids {
				if i == size {
					p.NextPageToken = ids[i-1]
					break
				}
				p.Items = append(p.Items, c.orders[id])
			}
			return p, nil
		}),
		"MARK_PAID": socket.Typed(func(ctx context.Context, id string, in markPaidIn) (Order, error) {
			if err := admin(ctx); err != nil {
				return Order{}, err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			o, ok := c.orders[id]
			switch {
			case !ok:
				return Order{}, socket.Errorf(socket.CodeNotFound, "no order %q", id)
			case o.Status == "paid" && o.PaymentID == in.PaymentID:
				return o, nil
			case o.Status == "paid":
				return Order{}, conflict(socket.CodeAlreadyExists, "already_paid")
			case o.Status != "paying" || o.Version != in.Version || o.PurchaseID != in.PurchaseID:
				return Order{}, conflict(socket.CodeConflict, "order_changed")
			case o.TotalCents != in.AmountCents:
				return Order{}, conflict(socket.CodeConflict, "amount_mismatch")
			}
			o.Status, o.PaymentID, o.Version, o.PurchaseID, o.LeaseExpiresAt = "paid", in.PaymentID, o.Version+1, "", ""
			c.orders[id] = o
			return o, nil
		}),
		"ABORT_PURCHASE": socket.Typed(func(ctx context.Context, id string, in abortIn) (Order, error) {
			if err := admin(ctx); err != nil {
				return Order{}, err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			o, ok := c.orders[id]
			if !ok {
				return Order{}, socket.Errorf(socket.CodeNotFound, "no order %q", id)
			}
			if o.Status == "paying" && o.PurchaseID == in.PurchaseID {
				o.Status, o.Version, o.PurchaseID, o.LeaseExpiresAt = "pending", o.Version+1, "", ""
				c.orders[id] = o
			}
			return o, nil
		}),
	}
	for name, h := range handlers {
		var opts []socket.ActionOption
		if name == "GET_ORDER" || name == "LIST_ORDERS" {
			opts = append(opts, socket.Read())
		}
		if err := srv.Handle(name, h, opts...); err != nil {
			return err
		}
	}
	return nil
}

// lease returns a lease_expires_at d from now.
func lease(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339Nano) }
