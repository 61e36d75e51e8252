// Package testhooks lets streamgate's own tests reach into the runtime
// without widening its public API or keeping state of its own: a hook is
// a value passed through an option that already exists. Nothing outside
// streamgate can import it.
package testhooks

import (
	"google.golang.org/grpc"

	"github.com/streamgate/streamgate/internal/coalesce"
)

// ServerFlights, passed to socket.WithGRPCServerOptions, makes a socket
// server share its identical reads through Group, so a test in another
// package can wait on Group.Waiting before it lets a shared run end. To
// gRPC it is an option that changes nothing.
type ServerFlights struct {
	grpc.EmptyServerOption
	Group *coalesce.Group
}
