package orders

import "time"

// live reports whether o is paying under a lease that has not expired at
// now.
func live(o Order, now time.Time) bool {
	return o.Status == StatusPaying && o.LeaseExpiresAt.After(now)
}

// whyNotChange explains why an order at cur refuses an edit or a delete
// based on an older read.
func whyNotChange(cur Order, now time.Time) error {
	switch {
	case cur.Status == StatusPaid:
		return ErrOrderPaid
	case live(cur, now):
		return ErrPurchaseInProgress
	}
	return ErrOrderChanged
}

// whyNotBegin explains why an order at cur refuses a purchase begun on a
// read at version.
func whyNotBegin(cur Order, purchaseID string, now time.Time) error {
	switch {
	case cur.Status == StatusPaid:
		return ErrAlreadyPaid
	case live(cur, now) && cur.PurchaseID != purchaseID:
		return ErrPurchaseInProgress
	}
	return ErrOrderChanged
}

// markPaidOutcome is what MarkPaid answers for an order at cur that it
// did not change: the order itself for a retry of the payment that paid
// it, else the reason.
func markPaidOutcome(cur Order, in MarkPaidInput) (Order, error) {
	switch {
	case cur.Status == StatusPaid && cur.PaymentID == in.PaymentID:
		return cur, nil
	case cur.Status == StatusPaid:
		return Order{}, ErrAlreadyPaid
	case cur.Status != StatusPaying || cur.Version != in.Version || cur.PurchaseID != in.PurchaseID:
		return Order{}, ErrOrderChanged
	case cur.TotalCents != in.AmountCents:
		return Order{}, &AmountMismatchError{TotalCents: cur.TotalCents, AmountCents: in.AmountCents}
	}
	return Order{}, ErrOrderChanged
}

// abandoned is o with its purchase given up: pending again.
func abandoned(o Order) Order {
	o.Status, o.PurchaseID, o.LeaseExpiresAt = StatusPending, "", time.Time{}
	o.Version++
	return o
}
