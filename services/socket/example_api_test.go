package socket_test

import (
	"fmt"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// DecodeBody is strict: a misspelt field is a clear INVALID_ARGUMENT.
func ExampleDecodeBody() {
	var in struct {
		Name string `json:"name"`
	}
	fmt.Println(socket.DecodeBody([]byte(`{"name":"Oska"}`), &in), in.Name)
	fmt.Println(status.CodeOf(socket.DecodeBody([]byte(`{"nick":"Oska"}`), &in)))
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
	fmt.Println(status.CodeOf(err))
	fmt.Println(keys.Revoke("reports"))
	// Output:
	// gateway true <nil>
	// UNAUTHENTICATED
	// true
}
