// Package testhooks lets streamgate's own tests reach into the runtime
// without widening its public API. The packages it names set its hooks
// when they load; nothing outside streamgate can import it.
package testhooks

import "github.com/streamgate/streamgate/internal/coalesce"

// ServerFlights returns a socket.ServerOption (typed any here, to keep
// this package below services/socket) that makes a server share its
// identical reads through g, so a test can wait on g.Waiting before it
// lets a shared run end. Set by services/socket.
var ServerFlights func(g *coalesce.Group) any
