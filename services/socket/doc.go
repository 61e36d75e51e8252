// Package socket is the streamgate socket's service runtime: a service
// creates a server, registers actions, and serves.
//
//	keys, _ := keyring.New(keyring.Key{Name: "gateway", Hash: hash, Delegate: true})
//	srv, _ := socket.NewServer(socket.Config{Name: "users", Version: "1.0.0"}, socket.WithKeys(keys))
//	srv.Handle("GET_USER", socket.Typed(getUser), socket.Read(), socket.CacheTTL(30*time.Second))
//	srv.Handle("UPDATE_USER", socket.Typed(updateUser), socket.Idempotent())
//	err := srv.Serve(ctx, lis) // until ctx ends, then drains
//
// Services publish what changed, for callers subscribed on the same streams:
//
//	err := srv.Publish("users/1", user, socket.Visibility{Subjects: []string{"1"}, Roles: []string{"admin"}})
//
// Callers (the gateway, or a handler calling another service) use the
// request library, package caller: caller.Dial, Client.Request,
// caller.Call, Client.Subscribe.
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
// Errors keep what clients see apart from what went wrong inside:
// Errorf formats the client-facing message, WithCause attaches the
// internal error for logs and errors.Is, never for the wire. The error
// type and its helpers are package status's.
package socket
