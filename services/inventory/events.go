package inventory

import (
	"context"

	"github.com/streamgate/streamgate/services/internal/events"
	"github.com/streamgate/streamgate/services/socket"
)

// publishing is a Store that publishes "items/{id}", visible to everyone
// (anyone may read items), with the item as GET_ITEM returns it, after
// every change of the item: create, update, delete ({"id", "deleted":
// true}), and the stock a reservation takes or a release puts back.
type publishing struct {
	Store
	pub *events.Publisher
}

func (p publishing) changed(ctx context.Context, ids ...string) {
	for _, id := range ids {
		p.pub.Changed(ctx, "items", id, socket.Visibility{Public: true}, events.Get(p.Store.Get, id, ErrNotFound))
	}
}

// written publishes the change of item id when the write that returned
// err succeeded; it returns err.
func (p publishing) written(ctx context.Context, id string, err error) error {
	if err == nil {
		p.changed(ctx, id)
	}
	return err
}

func (p publishing) Create(ctx context.Context, it Item) error {
	return p.written(ctx, it.ID, p.Store.Create(ctx, it))
}

func (p publishing) Update(ctx context.Context, id string, in UpdateInput) (Item, error) {
	it, err := p.Store.Update(ctx, id, in)
	return it, p.written(ctx, id, err)
}

func (p publishing) Delete(ctx context.Context, id string) (Item, error) {
	it, err := p.Store.Delete(ctx, id)
	return it, p.written(ctx, id, err)
}

func (p publishing) Reserve(ctx context.Context, r Reservation) (Reservation, bool, error) {
	out, existed, err := p.Store.Reserve(ctx, r)
	if err == nil && !existed {
		p.changed(ctx, lineItems(out.Reserved)...)
	}
	return out, existed, err
}

func (p publishing) Release(ctx context.Context, id string, version int64) (Reservation, bool, error) {
	out, released, err := p.Store.Release(ctx, id, version)
	if err == nil && released {
		p.changed(ctx, lineItems(out.Reserved)...)
	}
	return out, released, err
}

func lineItems(lines []Line) []string {
	ids := make([]string, len(lines))
	for i, l := range lines {
		ids[i] = l.ItemID
	}
	return ids
}
