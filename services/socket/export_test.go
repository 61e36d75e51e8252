package socket

// ClientFlights returns the Coalescer a client shares identical reads
// through, for tests that wait until callers joined a flight.
func ClientFlights(c *Client) *Coalescer { return &c.flights }

// ClientChanged returns a channel closed when one of the client's
// instances next changes state.
func ClientChanged(c *Client) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}
