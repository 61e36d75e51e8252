// Package caller is the streamgate socket's request library: it dials a
// service once and makes requests from any goroutine, over one stream per
// service instance (see package socket for the service side).
//
//	c, _ := caller.Dial("dns:///users:9000", caller.WithKey(secret))
//	defer c.Close()
//	res, err := c.Request(ctx, "UPDATE_USER", "1", map[string]any{"name": "Oska"})
//	user, err := caller.Call[User](ctx, c, "GET_USER", "1", nil)
//	stop, err := c.Subscribe(ctx, "users/*", func(e caller.Event) { … }) // every instance, renewed on reconnects
//
// A request's meta (API version, principal, trace) is the one
// ContextWithMeta put in its context, or, inside a handler, the meta the
// handler was called with. WithDeadline gives a request a deadline
// without a timer of its own.
//
// Dial targets:
//
//	dns:///users:9000                         one stream to every address the name resolves to
//	static:///10.0.0.1:9000,10.0.0.2:9000     a fixed list of instances
//	10.0.0.1:9000,10.0.0.2:9000               the same
//	localhost:9000                            one instance
//
// The client spreads requests by least in-flight, reconnects with backoff,
// moves new requests off a draining stream without failing any, and, when a
// stream breaks, sends a request again elsewhere only if it never left or
// the action is idempotent: writes are never sent twice. With no ready
// instance a request fails at once with UNAVAILABLE (reason
// "no_ready_instance"; see WithReadyWait) instead of waiting for its
// deadline. Errors are *status.Error.
package caller
