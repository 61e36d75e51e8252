package caller

import (
	"context"
	"time"

	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/services/socket/internal/deadline"
	"github.com/streamgate/streamgate/services/socket/internal/natswire"
)

// Flights returns the Group a client shares identical reads through, for
// tests that wait until callers joined a flight.
func Flights(c *Client) *coalesce.Group { return &c.flights }

// Coalesced counts the requests a client answered with an identical
// request in flight.
func Coalesced(c *Client) uint64 { return c.coalesced.Load() }

// Changed returns a channel closed when one of the client's instances next
// changes state.
func Changed(c *Client) <-chan struct{} {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	return c.pool.changed
}

// Instances returns what a client knows about each instance.
func Instances(c *Client) []instanceState { return c.pool.snapshots() }

// SetGrantTTL shortens how long an instance's answer about a NATS
// client's key stands.
func SetGrantTTL(c *Client, d time.Duration) {
	c.nats.grants.mu.Lock()
	defer c.nats.grants.mu.Unlock()
	c.nats.grants.ttl = d
}

// Grant returns what a NATS client believes its key may receive, asking an
// instance as Subscribe would.
func Grant(ctx context.Context, c *Client) *natswire.Grant { return c.nats.grant(ctx) }

// TimerMade reports whether a request's context made a timer: any
// context but WithDeadline's does; that one only once its Done was asked
// for.
func TimerMade(ctx context.Context) bool {
	d, ok := ctx.(*deadline.Context)
	return !ok || d.Asked()
}
