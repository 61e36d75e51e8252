package socket

import (
	"github.com/streamgate/streamgate/internal/coalesce"
)

// ClientFlights returns the Group a client shares identical reads
// through, for tests that wait until callers joined a flight.
func ClientFlights(c *Client) *coalesce.Group { return &c.flights }

// ClientCoalesced counts the requests a client answered with an identical
// request in flight.
func ClientCoalesced(c *Client) uint64 { return c.coalesced.Load() }

// ClientChanged returns a channel closed when one of the client's
// instances next changes state.
func ClientChanged(c *Client) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// WithFlights makes a server share identical reads through g, so a test
// can watch them. (Tests of other packages pass testhooks.ServerFlights.)
func WithFlights(g *coalesce.Group) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.flights = g })
}

// ClientInstances returns what a client knows about each instance.
func ClientInstances(c *Client) []instanceState { return c.snapshots() }

// ServerInstance returns a server's unique instance id.
func ServerInstance(s *Server) string { return s.instance }
