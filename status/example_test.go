package status_test

import (
	"errors"
	"fmt"

	"github.com/streamgate/streamgate/status"
)

// Errorf builds the message clients see; WithCause keeps the internal error
// for logs and errors.Is, never for the wire.
func ExampleErrorf() {
	errDriver := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	err := status.Errorf(status.CodeUnavailable, "the store is unavailable").WithCause(errDriver)

	fmt.Println(err)                                                         // what a caller sees
	fmt.Println(errors.Is(err, errDriver))                                   // the cause, for logs
	fmt.Println(errors.Is(err, &status.Error{Code: status.CodeUnavailable})) // matched by code
	fmt.Println(err.Proto().GetMessage())                                    // what the wire carries
	// Output:
	// UNAVAILABLE: the store is unavailable
	// true
	// true
	// the store is unavailable
}

// AsError gives any error a standard code: an *Error passes as is, context
// errors keep their meaning, anything else is INTERNAL with a generic
// message (its text stays in the cause).
func ExampleAsError() {
	fmt.Println(status.AsError(status.Errorf(status.CodeNotFound, "no user 9")))
	fmt.Println(status.AsError(errors.New("pq: relation \"users\" does not exist")))
	// Output:
	// NOT_FOUND: no user 9
	// INTERNAL: internal error
}

// A reason refines a code; a service names its own.
func ExampleError_Reason() {
	err := status.Errorf(status.CodeFailedPrecondition, "order 7 is paid").
		WithDetails(map[string]any{status.DetailReason: "order_paid"})
	fmt.Println(err.Code, err.Reason())
	// Output: FAILED_PRECONDITION order_paid
}
