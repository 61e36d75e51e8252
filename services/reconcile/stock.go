package reconcile

import (
	"context"
	"fmt"

	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

// releaseStock is step 4: stock held by reservations whose purchase will
// never be paid. A reservation's id is its purchase's id. Its purchase
// may still be paid while an order is paying under it (the purchase runs,
// or a later run settles it), and was paid when an order is paid under
// it: then the stock is sold. Otherwise no order will be paid under it
// unless a new BEGIN_PURCHASE takes it up again, whose RESERVE_STOCK moves
// the reservation's version on; so the reservations are read first, the
// orders after, and each release is a compare-and-set on the version read.
func (r *runner) releaseStock(ctx context.Context) error {
	if r.o.Inventory == nil {
		return nil
	}
	var held []inventory.Reservation
	err := eachReservation(ctx, r.o.Inventory, inventory.ReservationHeld, func(res inventory.Reservation) error {
		held = append(held, res)
		return nil
	})
	if err != nil {
		return fmt.Errorf("reconcile: held reservations: %w", err)
	}
	if len(held) == 0 {
		return nil
	}
	// Paying orders before paid ones: an order that is paid between the
	// two listings is in the second.
	purchases := map[string]orders.Order{} // purchase id → its order
	for _, status := range []orders.Status{orders.StatusPaying, orders.StatusPaid} {
		err := eachOrder(ctx, r.o.Orders, status, func(o orders.Order) error {
			if o.Status == status && o.PurchaseID != "" {
				purchases[o.PurchaseID] = o
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reconcile: %s orders: %w", status, err)
		}
	}
	for _, res := range held {
		o, ok := purchases[res.ID]
		switch {
		case ok && o.Status == orders.StatusPaid:
			// Sold.
		case ok && !r.dryReleased[res.ID]:
			r.inFlight(o.ID)
		default:
			r.releaseReservation(ctx, res)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// releaseReservation puts back the stock of a reservation whose purchase
// will never be paid, if it is still held at the version read.
func (r *runner) releaseReservation(ctx context.Context, res inventory.Reservation) {
	entry := Entry{Kind: KindReservation, ReservationID: res.ID, Lines: res.Reserved, Action: ActionReleasedStock, Reason: ReasonPurchaseAbandoned}
	if res.Version < 1 {
		// An inventory service without versions: a release could not be
		// a compare-and-set.
		entry.Reason = "no_reservation_version"
		r.unresolved(entry, nil)
		return
	}
	if r.o.DryRun {
		r.settled(entry)
		return
	}
	reply, err := r.o.Inventory.Do(ctx, "RELEASE_STOCK", res.ID, inventory.ReleaseInput{Version: res.Version})
	switch {
	case status.CodeOf(err) == socket.CodeConflict:
		// Reserved again since it was read: its purchase goes on.
	case err != nil:
		entry.Reason = "release_stock_failed"
		r.unresolved(entry, err)
	case !reply.Replayed:
		r.settled(entry)
	}
	// Replayed: released by someone else meanwhile.
}

// eachReservation calls f with every reservation in the status, page by
// page.
func eachReservation(ctx context.Context, c *caller.Client, status inventory.ReservationStatus, f func(inventory.Reservation) error) error {
	ask := func(token string) any {
		return inventory.ReservationsInput{Status: status, PageSize: pageSize, PageToken: token}
	}
	return eachListed(ctx, c, "LIST_RESERVATIONS", ask, func(p inventory.ReservationPage) ([]inventory.Reservation, string) {
		return p.Reservations, p.NextPageToken
	}, f)
}
