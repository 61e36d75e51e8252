// Package invoke is the gateway's invocation core: one place that owns a
// request's life, whichever edge it came from. An edge (REST, a WebSocket
// frame, GatewayService.Invoke) builds an Invocation and calls Invoke,
// which runs it through named stages:
//
//	resolve (version → route)        path.go
//	authorize (credentials → rule)   authorize.go
//	body (size, depth, UTF-8)        body.go
//	idempotency (Idempotency-Key)    idempotent.go
//	read (cache, coalescing) | write | pipeline   read.go, invoke.go, pipeline.go
//	invalidation (after writes, on events)        caching.go, caching_events.go
//	answer                           answer.go
//
// The route table in force (table.go) is swapped on reload; requests hold
// it while they run, so a reload never cuts one short.
//
//	c, _ := invoke.New(cfg, invoke.Options{Observers: obs})
//	t := c.Acquire()
//	defer t.Release()
//	a := c.Invoke(ctx, t, &invoke.Invocation{Path: p, Method: "GET", Record: r})
package invoke

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/streamgate/streamgate/gateway/cache"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/hub"
	"github.com/streamgate/streamgate/gateway/idempotency"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// Options are what the core is made of besides its first configuration.
type Options struct {
	// Logger takes what goes wrong out of any request's sight (a failed
	// invalidation, a failed store call). Default: discard.
	Logger *slog.Logger
	// Dial is added to every service client's options.
	Dial []caller.Option
	// ServiceTLS is the TLS of the links to services whose configuration
	// sets none (neither service_tls nor their own tls) and that are not
	// plaintext: true. Nil: the configuration's.
	ServiceTLS *config.LinkTLS
	// InsecurePlaintext allows plaintext links to services at targets
	// other than loopback, as the configuration's plaintext: true does.
	InsecurePlaintext bool
	// Targets override service targets by name in every configuration.
	Targets map[string]string
	// Cache is the response cache (the core closes it); nil: off.
	Cache *cache.Cache
	// Coalesce lets identical reads in flight share one request.
	Coalesce bool
	// Flights is the group identical reads share; nil: the core's own.
	Flights *coalesce.Group
	// Idempotency keeps Idempotency-Key leases and answers for every
	// configuration; nil: the configuration's choice (memory or Redis).
	Idempotency idempotency.Store
	// Observers are told every request's events.
	Observers observe.Observers
	// EventInvalidated is called with the tags each service event
	// invalidated, once they are (tests).
	EventInvalidated func(tags []string)
}

// Core runs invocations against the configuration in force.
type Core struct {
	logger    *slog.Logger
	obs       observe.Observers
	current   atomic.Pointer[Table] // the configuration in force
	res       *resources            // the clients, Redis and stores tables use
	reads     reader                // the read stage
	writes    invalidator           // what writes and events invalidate
	once      onceStage             // the Idempotency-Key stage
	describes coalesce.Group        // the Describe calls waiting for a service's catalogue, by service
	hub       hub.Hub               // upstream event subscriptions shared by local watchers (Watch)
	events    events                // the event log watches read instead, when the configuration has events:
}

// New returns a core serving cfg. It dials the services in the
// background; requests wait for them within their timeouts.
func New(cfg *config.Config, o Options) (*Core, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Flights == nil {
		o.Flights = new(coalesce.Group)
	}
	c := &Core{logger: o.Logger, obs: o.Observers}
	c.reads = reader{cache: o.Cache, flights: o.Flights, coalesce: o.Coalesce}
	c.writes = invalidator{cache: o.Cache, logger: o.Logger, eventInvalidated: o.EventInvalidated, acquire: c.Acquire}
	c.once = onceStage{logger: o.Logger}
	c.res = newResources(o, &c.writes)
	ev, err := openEvents(cfg, o.InsecurePlaintext)
	if err != nil {
		return nil, err
	}
	c.events = ev
	if err := c.Apply(cfg); err != nil {
		c.events.close()
		return nil, err
	}
	if err := c.events.watchForCache(&c.writes); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

// Acquire returns the table in force with a reference held; the caller
// releases it when its request is over.
func (c *Core) Acquire() *Table {
	for {
		t := c.current.Load()
		t.refs.Add(1)
		if c.current.Load() == t {
			return t
		}
		t.Release() // swapped meanwhile: take the new one
	}
}

// Config is the configuration in force, for what needs no reference to
// its table (a request's routing before it runs).
func (c *Core) Config() *config.Config { return c.current.Load().cfg }

// Invoke runs an invocation on table t, the one entry point of every
// edge: resolve, authorize, body, idempotency, then the route (a read
// through the cache and the coalescer, a write, or a pipeline), and the
// answer. It tells the invocation's record (in.Record) the route, the
// caller and the outcome.
func (c *Core) Invoke(ctx context.Context, t *Table, in *Invocation) Answer {
	a := c.invoke(ctx, t, in)
	in.Record.Ran(a.Err)
	a.tell(ctx, in.Record)
	return a
}

// invoke is Invoke before the outcome is told.
func (c *Core) invoke(ctx context.Context, t *Table, in *Invocation) Answer {
	refused := prepare(t, in)
	if in.route != nil {
		in.Record.Resolve(ctx, t.routeInfo(in.resolved), in.principal.Subject)
	}
	if refused != nil {
		return *refused
	}
	if a, ok := takeBody(t, in); !ok {
		return a
	}
	return c.once.run(ctx, t, in, c.route)
}

// Upstreams returns how many upstream event subscriptions the core holds.
// With the configuration's events: block, they are the topics the event
// log reads (one JetStream consumer each).
func (c *Core) Upstreams() int {
	if c.events.log != nil {
		return c.events.log.Watched()
	}
	return c.hub.Upstreams()
}

// Apply puts a new configuration in force atomically: requests in flight
// finish on the old one; new requests see the new one. Requests on older tables finish
// on them; a client is closed when the last table using it is done.
func (c *Core) Apply(cfg *config.Config) error {
	if err := c.events.checkSame(cfg); err != nil {
		return err
	}
	c.res.mu.Lock()
	defer c.res.mu.Unlock()
	for name, target := range c.res.opts.Targets {
		if svc := cfg.Services[name]; svc != nil {
			svc.Target = target
		}
	}
	t, err := c.res.build(cfg)
	if err != nil {
		return err
	}
	if err := c.res.useRedis(cfg); err != nil {
		return err
	}
	t.idem = c.res.idempotencyStore(cfg)
	if r, ok := t.idem.(*idempotency.Redis); ok {
		c.res.idemRefs[r]++
	}
	for _, cl := range uniqueClients(t) {
		c.res.clientRefs[cl]++
	}
	old := c.current.Swap(t)
	c.hub.Rebind(t.clients)
	if old == nil {
		return nil
	}
	c.writes.invalidateMoved(old, t)
	old.retire()
	c.res.retiring.Add(1)
	go func() {
		defer c.res.retiring.Done()
		<-old.idle
		c.res.mu.Lock()
		defer c.res.mu.Unlock()
		c.res.unref(old)
	}()
	return nil
}

// Close waits (until ctx ends) for the requests of every table, then
// closes every client and the Redis connection.
func (c *Core) Close(ctx context.Context) {
	if t := c.current.Load(); t != nil {
		t.retire()
		select {
		case <-t.idle:
		case <-ctx.Done():
		}
	}
	retired := make(chan struct{})
	go func() { c.res.retiring.Wait(); close(retired) }()
	select {
	case <-retired:
	case <-ctx.Done():
	}
	c.hub.Close()
	c.events.close()
	c.res.closeAll()
}
