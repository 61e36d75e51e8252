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

// eachListed calls f with every entry of the pages action lists, page by
// page: ask returns the body that asks for the page after token (empty for
// the first), entries a page's entries and its next page token.
func eachListed[Page, Entry any](ctx context.Context, c *caller.Client, action string, ask func(token string) any, entries func(Page) ([]Entry, string), f func(Entry) error) error {
	token := ""
	for {
		page, err := caller.Call[Page](ctx, c, action, "", ask(token))
		if err != nil {
			return err
		}
		list, next := entries(page)
		for _, e := range list {
			if err := f(e); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		token = next
	}
}

// eachPayment calls f with every payment that matches in, page by page.
func eachPayment(ctx context.Context, c *caller.Client, in payments.ListInput, f func(payments.Payment) error) error {
	in.PageSize = pageSize
	ask := func(token string) any {
		in.PageToken = token
		return in
	}
	return eachListed(ctx, c, "LIST_PAYMENTS", ask, func(p payments.Page) ([]payments.Payment, string) {
		return p.Items, p.NextPageToken
	}, f)
}

// eachOrder calls f with every order in the status, page by page.
func eachOrder(ctx context.Context, c *caller.Client, status orders.Status, f func(orders.Order) error) error {
	ask := func(token string) any {
		return orders.ListOrdersInput{Status: status, PageSize: pageSize, PageToken: token}
	}
	return eachListed(ctx, c, "LIST_ORDERS", ask, func(p orders.Page[orders.Order]) ([]orders.Order, string) {
		return p.Items, p.NextPageToken
	}, f)
}
