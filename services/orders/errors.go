package orders

import (
	"time"

	"github.com/streamgate/streamgate/services/socket"
)

// Reasons refining FAILED_PRECONDITION, ALREADY_EXISTS and CONFLICT
// answers, in the details under "reason".
const (
	ReasonOrderPaid      = "order_paid"
	ReasonAlreadyPaid    = "already_paid"
	ReasonVoucherUsed    = "voucher_used"
	ReasonUnknownVoucher = "unknown_voucher"
	// ReasonPurchaseInProgress: the order is paying under another
	// purchase whose lease is live (CONFLICT).
	ReasonPurchaseInProgress = "purchase_in_progress"
	// ReasonOrderChanged: the order is not in the state (version,
	// status, purchase) the caller saw (CONFLICT).
	ReasonOrderChanged = "order_changed"
	// ReasonAmountMismatch: MARK_PAID's amount is not the order's total
	// (CONFLICT).
	ReasonAmountMismatch = "amount_mismatch"
)

// errOrderNotFound is the one answer for an order that is missing or not
// the caller's to see.
func errOrderNotFound(id string) error {
	return socket.Errorf(socket.CodeNotFound, "no order %q", id)
}

func errVoucherNotFound(code string) error {
	return socket.Errorf(socket.CodeNotFound, "no voucher %q", code)
}

func errOrderPaid(id string) error {
	return socket.Errorf(socket.CodeFailedPrecondition, "order %q is paid: only pending orders can change", id).
		WithDetails(map[string]any{socket.DetailReason: ReasonOrderPaid})
}

func errAlreadyPaid(id string) error {
	return socket.Errorf(socket.CodeAlreadyExists, "order %q is already paid", id).
		WithDetails(map[string]any{socket.DetailReason: ReasonAlreadyPaid})
}

func errOrderChanged(id string) error {
	return socket.Errorf(socket.CodeConflict, "order %q changed meanwhile: read it again", id).
		WithDetails(map[string]any{socket.DetailReason: ReasonOrderChanged})
}

func errPurchaseInProgress(id string) error {
	return socket.Errorf(socket.CodeConflict, "order %q is being paid: try again once the purchase ends", id).
		WithDetails(map[string]any{socket.DetailReason: ReasonPurchaseInProgress})
}

func errAmountMismatch(id string, total, amount int64) error {
	return socket.Errorf(socket.CodeConflict, "order %q totals %d cents, not %d", id, total, amount).
		WithDetails(map[string]any{socket.DetailReason: ReasonAmountMismatch, "total_cents": total, "amount_cents": amount})
}

func errVoucherUsed(code string) error {
	return socket.Errorf(socket.CodeFailedPrecondition, "voucher %q is already used by another order", code).
		WithDetails(map[string]any{socket.DetailReason: ReasonVoucherUsed, "code": code})
}

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
		return errOrderPaid(cur.ID)
	case live(cur, now):
		return errPurchaseInProgress(cur.ID)
	}
	return errOrderChanged(cur.ID)
}

// whyNotBegin explains why an order at cur refuses a purchase begun on a
// read at version.
func whyNotBegin(cur Order, purchaseID string, now time.Time) error {
	switch {
	case cur.Status == StatusPaid:
		return errAlreadyPaid(cur.ID)
	case live(cur, now) && cur.PurchaseID != purchaseID:
		return errPurchaseInProgress(cur.ID)
	}
	return errOrderChanged(cur.ID)
}

// markPaidOutcome is what MarkPaid answers for an order at cur that it
// did not change: the order itself for a retry of the payment that paid
// it, else the reason.
func markPaidOutcome(cur Order, in MarkPaidInput) (Order, error) {
	switch {
	case cur.Status == StatusPaid && cur.PaymentID == in.PaymentID:
		return cur, nil
	case cur.Status == StatusPaid:
		return Order{}, errAlreadyPaid(cur.ID)
	case cur.Status != StatusPaying || cur.Version != in.Version || cur.PurchaseID != in.PurchaseID:
		return Order{}, errOrderChanged(cur.ID)
	case cur.TotalCents != in.AmountCents:
		return Order{}, errAmountMismatch(cur.ID, cur.TotalCents, in.AmountCents)
	}
	return Order{}, errOrderChanged(cur.ID)
}

// abandoned is o with its purchase given up: pending again.
func abandoned(o Order) Order {
	o.Status, o.PurchaseID, o.LeaseExpiresAt = StatusPending, "", time.Time{}
	o.Version++
	return o
}
