package payments

import (
	"errors"
	"fmt"

	"github.com/streamgate/streamgate/services/socket"
)

// The errors a Store returns for outcomes a caller can act on; any other
// error is a failure of the storage itself. The service turns them into
// its answers (NOT_FOUND, ALREADY_EXISTS, CONFLICT, FAILED_PRECONDITION).
var (
	// ErrNotFound: no payment has the id.
	ErrNotFound = errors.New("payments: no such payment")
	// ErrExists: the payment id is taken.
	ErrExists = errors.New("payments: payment id taken")
	// ErrNoKey: the Idempotency-Key was never claimed (or was released).
	ErrNoKey = errors.New("payments: no such idempotency key")
)

// HeldError is Create's error when another payment holds the order: a
// succeeded one (the order is paid), a pending one (its charge runs) or a
// refunded one whose refund runs.
type HeldError struct {
	OrderID string
	// PaymentID is the holder; empty when the hold kept changing.
	PaymentID string
	// Status is the holder's status.
	Status Status
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("payments: order %q is held by payment %q (%s)", e.OrderID, e.PaymentID, e.Status)
}

// StatusError is Update's error when the payment is not in the
// transition's From status.
type StatusError struct {
	ID string
	// Got is the payment's status, Want the transition's From.
	Got, Want Status
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("payments: payment %q is %s, not %s", e.ID, e.Got, e.Want)
}

// storeError turns a Store error into the client's answer; id names the
// payment (or, for ErrNoKey, the key) asked for. Other errors (nil too)
// pass unchanged.
func storeError(err error, id string) error {
	var held *HeldError
	var status *StatusError
	switch {
	case errors.Is(err, ErrNotFound):
		return errNoPayment(id)
	case errors.Is(err, ErrExists):
		return socket.Errorf(socket.CodeAlreadyExists, "payment %q exists", id)
	case errors.Is(err, ErrNoKey):
		return socket.Errorf(socket.CodeNotFound, "no idempotency key %q", id)
	case errors.As(err, &held):
		return errHeld(held.OrderID, held.PaymentID, held.Status)
	case errors.As(err, &status):
		return socket.Errorf(socket.CodeFailedPrecondition, "payment %q is %s, not %s", status.ID, status.Got, status.Want).
			WithDetails(map[string]any{"payment_id": status.ID, "status": string(status.Got)})
	}
	return err
}

func errNoPayment(id string) error {
	return socket.Errorf(socket.CodeNotFound, "no payment %q", id)
}

// errHeld says why an order cannot be paid now: its holder's status.
func errHeld(orderID, paymentID string, status Status) error {
	if status == StatusSucceeded {
		return socket.Errorf(socket.CodeAlreadyExists, "order %q is already paid (payment %s)", orderID, paymentID).
			WithDetails(map[string]any{"order_id": orderID, "payment_id": paymentID})
	}
	reason, what := "payment_in_progress", "a payment"
	if status == StatusRefunded {
		reason, what = "refund_in_progress", "a refund"
	}
	return socket.Errorf(socket.CodeConflict, "%s for order %q is in progress (payment %s); try again later", what, orderID, paymentID).
		WithDetails(map[string]any{socket.DetailReason: reason, "order_id": orderID, "payment_id": paymentID})
}
