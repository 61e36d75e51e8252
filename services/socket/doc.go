// Package socket is the streamgate socket: the protocol runtime on the
// service side and the request library on the caller side.
//
// A service creates a server, registers actions, and serves:
//
//	keys, _ := socket.NewKeyring(socket.Key{Name: "gateway", Hash: hash, Delegate: true})
//	srv, _ := socket.NewServer(socket.Config{Name: "users", Version: "1.0.0"}, socket.WithKeys(keys))
//	srv.Handle("GET_USER", socket.Typed(getUser), socket.Read(), socket.CacheTTL(30*time.Second))
//	srv.Handle("UPDATE_USER", socket.Typed(updateUser), socket.Idempotent())
//	err := srv.Serve(ctx, lis) // until ctx ends, then drains
//
// A caller dials once and makes requests from any goroutine:
//
//	c, _ := socket.Dial("dns:///users:9000", socket.WithKey(secret))
//	defer c.Close()
//	res, err := c.Request(ctx, "UPDATE_USER", "1", map[string]any{"name": "Oska"})
//	user, err := socket.Call[User](ctx, c, "GET_USER", "1", nil)
//
// Services publish what changed; callers subscribe on the same streams:
//
//	err := srv.Publish("users/1", user, socket.Visibility{Subjects: []string{"1"}, Roles: []string{"admin"}})
//	stop, err := c.Subscribe(ctx, "users/*", func(e socket.Event) { … }) // every instance, renewed on reconnects
//
// Every request travels as a frame on one persistent gRPC stream per
// service instance (SocketService.Connect); many are in flight at once and
// answers return out of order. The caller authenticates when the stream
// opens. The server runs each frame under a context that ends at the
// frame's deadline, on a cancel frame, or when the stream ends; bounds the
// requests in flight per stream and per server (RESOURCE_EXHAUSTED beyond
// them); turns handler panics into INTERNAL for that frame alone; and, when
// Serve's context ends, drains: a drain frame tells callers to move on,
// requests in flight finish, then the streams close.
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
// deadline.
//
// Errors keep what clients see apart from what went wrong inside:
// Errorf formats the client-facing message, WithCause attaches the
// internal error for logs and errors.Is, never for the wire.
package socket
