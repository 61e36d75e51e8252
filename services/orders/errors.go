package orders

import (
	"errors"
	"fmt"

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

// The errors a Store returns for outcomes a caller can act on; any other
// error is a failure of the storage itself. The service turns them into
// its answers.
var (
	// ErrOrderNotFound: no order has the id (NOT_FOUND).
	ErrOrderNotFound = errors.New("orders: no such order")
	// ErrOrderExists: the order id is taken (ALREADY_EXISTS).
	ErrOrderExists = errors.New("orders: order id taken")
	// ErrVoucherNotFound: no voucher has the code (NOT_FOUND).
	ErrVoucherNotFound = errors.New("orders: no such voucher")
	// ErrVoucherExists: the voucher code is taken (ALREADY_EXISTS).
	ErrVoucherExists = errors.New("orders: voucher code taken")
	// ErrOrderPaid: a paid order does not change (FAILED_PRECONDITION
	// order_paid).
	ErrOrderPaid = errors.New("orders: order is paid")
	// ErrAlreadyPaid: the order is paid, by another payment
	// (ALREADY_EXISTS already_paid).
	ErrAlreadyPaid = errors.New("orders: order is already paid")
	// ErrOrderChanged: the order is not at the version, status or purchase
	// the caller read (CONFLICT order_changed).
	ErrOrderChanged = errors.New("orders: order changed meanwhile")
	// ErrPurchaseInProgress: another purchase's lease is live (CONFLICT
	// purchase_in_progress).
	ErrPurchaseInProgress = errors.New("orders: a purchase is in progress")
	// ErrVoucherUsed is what a *VoucherUsedError is (errors.Is).
	ErrVoucherUsed = errors.New("orders: voucher used by another order")
	// ErrAmountMismatch is what an *AmountMismatchError is (errors.Is).
	ErrAmountMismatch = errors.New("orders: amount is not the order's total")
)

// VoucherUsedError: another order redeemed the voucher or holds it under
// a live lease (FAILED_PRECONDITION voucher_used).
type VoucherUsedError struct {
	Code string
}

func (e *VoucherUsedError) Error() string { return fmt.Sprintf("orders: voucher %q is used", e.Code) }

// Unwrap makes the error ErrVoucherUsed for errors.Is.
func (e *VoucherUsedError) Unwrap() error { return ErrVoucherUsed }

// AmountMismatchError: MarkPaid's amount is not the order's total
// (CONFLICT amount_mismatch).
type AmountMismatchError struct {
	TotalCents, AmountCents int64
}

func (e *AmountMismatchError) Error() string {
	return fmt.Sprintf("orders: the order totals %d cents, not %d", e.TotalCents, e.AmountCents)
}

// Unwrap makes the error ErrAmountMismatch for errors.Is.
func (e *AmountMismatchError) Unwrap() error { return ErrAmountMismatch }

// storeError turns a Store error into the client's answer; id is the
// order id, or the voucher code for the voucher errors. Other errors (nil
// too) pass unchanged.
func storeError(err error, id string) error {
	var used *VoucherUsedError
	var amount *AmountMismatchError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrOrderNotFound):
		return errOrderNotFound(id)
	case errors.Is(err, ErrOrderExists):
		return socket.Errorf(socket.CodeAlreadyExists, "order %q already exists", id)
	case errors.Is(err, ErrVoucherNotFound):
		return socket.Errorf(socket.CodeNotFound, "no voucher %q", id)
	case errors.Is(err, ErrVoucherExists):
		return socket.Errorf(socket.CodeAlreadyExists, "voucher %q already exists", id)
	case errors.Is(err, ErrOrderPaid):
		return socket.Errorf(socket.CodeFailedPrecondition, "order %q is paid: only pending orders can change", id).
			WithDetails(map[string]any{socket.DetailReason: ReasonOrderPaid})
	case errors.Is(err, ErrAlreadyPaid):
		return socket.Errorf(socket.CodeAlreadyExists, "order %q is already paid", id).
			WithDetails(map[string]any{socket.DetailReason: ReasonAlreadyPaid})
	case errors.Is(err, ErrOrderChanged):
		return socket.Errorf(socket.CodeConflict, "order %q changed meanwhile: read it again", id).
			WithDetails(map[string]any{socket.DetailReason: ReasonOrderChanged})
	case errors.Is(err, ErrPurchaseInProgress):
		return errPurchaseInProgress(id)
	case errors.As(err, &used):
		return errVoucherUsed(used.Code)
	case errors.As(err, &amount):
		return socket.Errorf(socket.CodeConflict, "order %q totals %d cents, not %d", id, amount.TotalCents, amount.AmountCents).
			WithDetails(map[string]any{socket.DetailReason: ReasonAmountMismatch, "total_cents": amount.TotalCents, "amount_cents": amount.AmountCents})
	}
	return err
}

// errOrderNotFound is the one answer for an order that is missing or not
// the caller's to see.
func errOrderNotFound(id string) error {
	return socket.Errorf(socket.CodeNotFound, "no order %q", id)
}

func errPurchaseInProgress(id string) error {
	return socket.Errorf(socket.CodeConflict, "order %q is being paid: try again once the purchase ends", id).
		WithDetails(map[string]any{socket.DetailReason: ReasonPurchaseInProgress})
}

func errVoucherUsed(code string) error {
	return socket.Errorf(socket.CodeFailedPrecondition, "voucher %q is already used by another order", code).
		WithDetails(map[string]any{socket.DetailReason: ReasonVoucherUsed, "code": code})
}
