package socket

import (
	"context"

	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/services/socket/internal/deadline"
)

// TimerMade reports whether a handler's context made a timer: any
// context but the runtime's own does; that one only once its Done was
// asked for.
func TimerMade(ctx context.Context) bool {
	d, ok := ctx.(*deadline.Context)
	return !ok || d.Asked()
}

// WithFlights makes a server share identical reads through g, so a test
// can watch them. (Tests of other packages pass testhooks.ServerFlights.)
func WithFlights(g *coalesce.Group) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.flights = g })
}

// ServerInstance returns a server's unique instance id.
func ServerInstance(s *Server) string { return s.instance }
