package inventory

import (
	"errors"
	"fmt"

	"github.com/streamgate/streamgate/services/socket"
)

// The errors a Store returns for outcomes a caller can act on; any other
// error is a failure of the storage itself. The service turns them into
// its answers (NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
// INVALID_ARGUMENT).
var (
	// ErrNotFound: no item has the id.
	ErrNotFound = errors.New("inventory: no such item")
	// ErrExists: the item id is taken.
	ErrExists = errors.New("inventory: item id taken")
	// ErrNoReservation: no reservation has the id.
	ErrNoReservation = errors.New("inventory: no such reservation")
	// ErrReservationChanged: a release asked for a version the held
	// reservation is no longer at.
	ErrReservationChanged = errors.New("inventory: reservation reserved again")
)

// OutOfStockError is Reserve's error when stock cannot cover every line.
type OutOfStockError struct {
	// Missing are the short lines, in the order of the reservation's.
	Missing []Shortage
}

func (e *OutOfStockError) Error() string {
	return "inventory: out of stock"
}

// OverflowError is Release's error when putting a line's stock back would
// pass math.MaxInt64.
type OverflowError struct {
	Line Line
}

func (e *OverflowError) Error() string {
	return fmt.Sprintf("inventory: releasing %d of item %q would overflow its stock", e.Line.Quantity, e.Line.ItemID)
}

// storeError turns a Store error into the client's answer; id names the
// item or reservation asked for. Other errors (nil too) pass unchanged.
func storeError(err error, id string) error {
	var short *OutOfStockError
	var over *OverflowError
	switch {
	case errors.Is(err, ErrNotFound):
		return socket.Errorf(socket.CodeNotFound, "no item %q", id)
	case errors.Is(err, ErrExists):
		return socket.Errorf(socket.CodeAlreadyExists, "item %q already exists", id)
	case errors.Is(err, ErrNoReservation):
		return socket.Errorf(socket.CodeNotFound, "no reservation %q", id)
	case errors.As(err, &short):
		return outOfStock(short.Missing)
	case errors.As(err, &over):
		return socket.Errorf(socket.CodeInvalidArgument, "releasing %d of item %q would overflow its stock", over.Line.Quantity, over.Line.ItemID)
	}
	return err
}
