package orders

import (
	"context"
	"time"

	"github.com/streamgate/streamgate/services/internal/events"
)

// publishing is a Store that publishes "orders/{id}", visible to the
// order's owner and to admins, with the order as GET_ORDER returns it
// (status, lines, total, version), after every change of the order:
// create, update, delete ({"id", "deleted": true}), a purchase's begin,
// abort and payment.
type publishing struct {
	Store
	pub *events.Publisher
}

func (p publishing) changed(ctx context.Context, o Order) {
	p.pub.Changed(ctx, "orders", o.ID, events.Owner(o.UserID), events.Get(p.Store.GetOrder, o.ID, ErrOrderNotFound))
}

// written publishes the change of o when the write that returned err
// succeeded; it returns err.
func (p publishing) written(ctx context.Context, o Order, err error) error {
	if err == nil {
		p.changed(ctx, o)
	}
	return err
}

func (p publishing) CreateOrder(ctx context.Context, o Order) error {
	return p.written(ctx, o, p.Store.CreateOrder(ctx, o))
}

func (p publishing) UpdatePendingOrder(ctx context.Context, prev, next Order, now time.Time) (Order, error) {
	o, err := p.Store.UpdatePendingOrder(ctx, prev, next, now)
	return o, p.written(ctx, o, err)
}

func (p publishing) DeletePendingOrder(ctx context.Context, prev Order, now time.Time) (Order, error) {
	o, err := p.Store.DeletePendingOrder(ctx, prev, now)
	return o, p.written(ctx, prev, err)
}

func (p publishing) BeginPurchase(ctx context.Context, prev Order, purchaseID string, now, until time.Time) (Order, error) {
	o, err := p.Store.BeginPurchase(ctx, prev, purchaseID, now, until)
	return o, p.written(ctx, o, err)
}

func (p publishing) AbortPurchase(ctx context.Context, id, purchaseID string) (Order, bool, error) {
	o, aborted, err := p.Store.AbortPurchase(ctx, id, purchaseID)
	if err == nil && aborted {
		p.changed(ctx, o)
	}
	return o, aborted, err
}

func (p publishing) MarkPaid(ctx context.Context, id string, in MarkPaidInput) (Order, error) {
	o, err := p.Store.MarkPaid(ctx, id, in)
	return o, p.written(ctx, o, err)
}
