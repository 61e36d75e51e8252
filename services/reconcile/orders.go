package reconcile

import (
	"context"
	"time"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// leaseExpired reports whether an order's purchase lease has run out at
// now; an order without a lease has none left.
func leaseExpired(o orders.Order, now time.Time) bool {
	return !now.Before(o.LeaseExpiresAt)
}

// pageSize is how many payments or orders a page asks for.
const pageSize = 200

// eachPayment calls f with every payment that matches in, page by page.
func eachPayment(ctx context.Context, c *caller.Client, in payments.ListInput, f func(payments.Payment) error) error {
	in.PageSize = pageSize
	for {
		page, err := caller.Call[payments.Page](ctx, c, "LIST_PAYMENTS", "", in)
		if err != nil {
			return err
		}
		for _, p := range page.Items {
			if err := f(p); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" {
			return nil
		}
		in.PageToken = page.NextPageToken
	}
}

// eachOrder calls f with every order in the status, page by page.
func eachOrder(ctx context.Context, c *caller.Client, status orders.Status, f func(orders.Order) error) error {
	in := orders.ListOrdersInput{Status: status, PageSize: pageSize}
	for {
		page, err := caller.Call[orders.Page[orders.Order]](ctx, c, "LIST_ORDERS", "", in)
		if err != nil {
			return err
		}
		for _, o := range page.Items {
			if err := f(o); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" {
			return nil
		}
		in.PageToken = page.NextPageToken
	}
}
