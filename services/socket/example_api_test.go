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
