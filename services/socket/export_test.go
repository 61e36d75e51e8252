package socket

import (
	"github.com/streamgate/streamgate/internal/coalesce"
)

// WithFlights makes a server share identical reads through g, so a test
// can watch them. (Tests of other packages pass testhooks.ServerFlights.)
func WithFlights(g *coalesce.Group) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.flights = g })
}

// ServerInstance returns a server's unique instance id.
func ServerInstance(s *Server) string { return s.instance }
