package invoke

import (
	"context"
	"slices"
	"sync"

	"google.golang.org/grpc/connectivity"
)

// Health is what the core's readiness depends on.
type Health struct {
	// UnreadyServices names the services without a ready stream, sorted.
	UnreadyServices []string
	// Cache is "off", "local" (generations in the process), "ok" or
	// "unavailable" (its Redis does not answer).
	Cache string
	// IdempotencyStore is "memory", "ok" or "unavailable" (its Redis does
	// not answer).
	IdempotencyStore string
	// Events is "off" (no events: block), "ok" or "unavailable" (the
	// connection to its NATS server is down: subscriptions fail, and
	// watches resume once it is back).
	Events string
}

// pinger is a store whose Redis can be asked whether it answers.
type pinger interface {
	Ping(ctx context.Context) error
}

// Health reports the services' streams and asks each Redis the core uses
// whether it answers (concurrently, each within its call deadline).
func (c *Core) Health(ctx context.Context) Health {
	h := Health{Cache: "off", IdempotencyStore: "memory", Events: c.events.state()}
	t := c.Acquire()
	defer t.Release()
	for name, cl := range t.clients {
		if cl.State() != connectivity.Ready {
			h.UnreadyServices = append(h.UnreadyServices, name)
		}
	}
	slices.Sort(h.UnreadyServices)
	var gens pinger
	if c.res.opts.Cache != nil {
		h.Cache = "local"
		c.res.mu.Lock()
		if c.res.redis != nil {
			gens = c.res.redis.gens
		}
		c.res.mu.Unlock()
	}
	idem, _ := t.idem.(pinger)
	var wg sync.WaitGroup
	check := func(p pinger, state *string) {
		if p == nil {
			return
		}
		wg.Go(func() {
			*state = "ok"
			if p.Ping(ctx) != nil {
				*state = "unavailable"
			}
		})
	}
	check(gens, &h.Cache)
	check(idem, &h.IdempotencyStore)
	wg.Wait()
	return h
}
