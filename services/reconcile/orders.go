package reconcile

import (
	"context"
	"time"

	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket"
)

// The order statuses the reconciler reads.
const (
	orderPending = "pending"
	orderPaying  = "paying"
	orderPaid    = "paid"
)

// order is what the reconciler reads of the orders service's Order.
type order struct {
	ID          string `json:"id"`
	UserID      string `json:"user_id"`
	TotalCents  int64  `json:"total_cents"`
	Status      string `json:"status"`
	PaymentID   string `json:"payment_id,omitempty"`
	Version     int64  `json:"version"`
	PurchaseID  string `json:"purchase_id,omitempty"`
	LeaseExpiry string `json:"lease_expires_at,omitempty"`
}

// leaseExpired reports whether the order's purchase lease has run out at
// now; an order without a (readable) lease has none left.
func (o order) leaseExpired(now time.Time) bool {
	if o.LeaseExpiry == "" {
		return true
	}
	t, err := time.Parse(time.RFC3339Nano, o.LeaseExpiry)
	return err != nil || !now.Before(t)
}

// orderPage is LIST_ORDERS' result.
type orderPage struct {
	Items         []order `json:"items"`
	NextPageToken string  `json:"next_page_token,omitempty"`
}

// listOrdersInput is LIST_ORDERS' body.
type listOrdersInput struct {
	Status    string `json:"status,omitempty"`
	PageSize  int    `json:"page_size,omitempty"`
	PageToken string `json:"page_token,omitempty"`
}

// markPaidInput is MARK_PAID's body: a compare-and-set on the order's
// version and purchase.
type markPaidInput struct {
	PaymentID   string `json:"payment_id"`
	AmountCents int64  `json:"amount_cents"`
	Version     int64  `json:"version"`
	PurchaseID  string `json:"purchase_id"`
}

// abortPurchaseInput is ABORT_PURCHASE's body.
type abortPurchaseInput struct {
	PurchaseID string `json:"purchase_id"`
}

// pageSize is how many payments or orders a page asks for.
const pageSize = 200

// eachPayment calls f with every payment that matches in, page by page.
func eachPayment(ctx context.Context, c *socket.Client, in payments.ListInput, f func(payments.Payment) error) error {
	in.PageSize = pageSize
	for {
		page, err := socket.Call[payments.Page](ctx, c, "LIST_PAYMENTS", "", in)
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
func eachOrder(ctx context.Context, c *socket.Client, status string, f func(order) error) error {
	in := listOrdersInput{Status: status, PageSize: pageSize}
	for {
		page, err := socket.Call[orderPage](ctx, c, "LIST_ORDERS", "", in)
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
