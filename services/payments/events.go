package payments

import (
	"context"

	"github.com/streamgate/streamgate/services/internal/events"
	"github.com/streamgate/streamgate/services/socket"
)

// publishing is a Store that publishes "payments/{id}", visible to the
// payment's owner and to admins, with the payment as GET_PAYMENT returns
// it, after every change of the payment: created pending, then
// succeeded, failed or refunded (by PAY, REFUND or the settle pass).
type publishing struct {
	Store
	srv *socket.Server
	pub *events.Publisher
}

// Publishing returns st publishing "payments/{id}" on srv after every
// change of a payment. Register publishes so on its own; give the result
// to SettleEvery or Settle so that their changes are published too.
func Publishing(srv *socket.Server, st Store) Store {
	if p, ok := st.(publishing); ok && p.srv == srv {
		return st
	}
	return publishing{Store: st, srv: srv, pub: events.New(srv)}
}

// written publishes the change of pay when the write that returned err
// succeeded; it returns err.
func (p publishing) written(ctx context.Context, pay Payment, err error) error {
	if err == nil {
		p.pub.Changed(ctx, "payments", pay.ID, events.Owner(pay.UserID), events.Get(p.Store.Get, pay.ID, ErrNotFound))
	}
	return err
}

func (p publishing) Create(ctx context.Context, pay Payment) error {
	return p.written(ctx, pay, p.Store.Create(ctx, pay))
}

func (p publishing) Update(ctx context.Context, id string, t Transition) (Payment, error) {
	pay, err := p.Store.Update(ctx, id, t)
	return pay, p.written(ctx, pay, err)
}
