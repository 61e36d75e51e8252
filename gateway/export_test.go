package gateway

import "github.com/streamgate/streamgate/services/socket"

// Flights returns the Coalescer a gateway shares identical reads through,
// for tests that wait until requests joined a flight.
func Flights(g *Gateway) *socket.Coalescer { return &g.flights }
