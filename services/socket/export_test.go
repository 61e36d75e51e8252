package socket

// ClientFlights returns the Coalescer a client shares identical reads
// through, for tests that wait until callers joined a flight.
func ClientFlights(c *Client) *Coalescer { return &c.flights }
