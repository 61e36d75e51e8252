package socket_test

import (
	"errors"
	"fmt"

	"github.com/streamgate/streamgate/services/socket"
)

// Errorf builds the message clients see; WithCause keeps the internal error
// for logs and errors.Is, never for the wire.
func ExampleErrorf() {
	errDriver := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	err := socket.Errorf(socket.CodeUnavailable, "the store is unavailable").WithCause(errDriver)

	fmt.Println(err)                                                         // what a caller sees
	fmt.Println(errors.Is(err, errDriver))                                   // the cause, for logs
	fmt.Println(errors.Is(err, &socket.Error{Code: socket.CodeUnavailable})) // matched by code
	fmt.Println(err.HTTPStatus())
	// Output:
	// UNAVAILABLE: the store is unavailable
	// true
	// true
	// 503
}

// A payment refused by its provider is 402 at the REST edge; other
// FAILED_PRECONDITION errors are 422.
func ExampleError_HTTPStatus() {
	declined := socket.Errorf(socket.CodeFailedPrecondition, "the card was declined").
		WithDetails(map[string]any{socket.DetailReason: "card_declined"})
	paid := socket.Errorf(socket.CodeFailedPrecondition, "order 7 is paid")
	fmt.Println(declined.HTTPStatus(), paid.HTTPStatus())
	// Output: 402 422
}

// AsError gives any error a standard code: an *Error passes as is, context
// errors keep their meaning, anything else is INTERNAL with a generic
// message (its text stays in the cause).
func ExampleAsError() {
	fmt.Println(socket.AsError(socket.Errorf(socket.CodeNotFound, "no user 9")))
	fmt.Println(socket.AsError(errors.New("pq: relation \"users\" does not exist")))
	// Output:
	// NOT_FOUND: no user 9
	// INTERNAL: internal error
}

// DecodeBody is strict: a misspelt field is a clear INVALID_ARGUMENT.
func ExampleDecodeBody() {
	var in struct {
		Name string `json:"name"`
	}
	fmt.Println(socket.DecodeBody([]byte(`{"name":"Oska"}`), &in), in.Name)
	fmt.Println(socket.CodeOf(socket.DecodeBody([]byte(`{"nick":"Oska"}`), &in)))
	// Output:
	// <nil> Oska
	// INVALID_ARGUMENT
}

// A keyring holds the keys callers present when they open a stream;
// configuration keeps only their hashes.
func ExampleNewKeyring() {
	keys, err := socket.NewKeyring(
		socket.Key{Name: "gateway", Hash: socket.HashKey("s3cret"), Delegate: true},
		socket.Key{Name: "reports", Secret: "r3ad", Actions: []string{"GET_USER"}},
	)
	if err != nil {
		panic(err)
	}
	k, err := keys.Verify("s3cret")
	fmt.Println(k.Name, k.Delegate, err)
	_, err = keys.Verify("guess")
	fmt.Println(socket.CodeOf(err))
	fmt.Println(keys.Revoke("reports"))
	// Output:
	// gateway true <nil>
	// UNAUTHENTICATED
	// true
}
