// Package sockettest runs socket servers and clients inside tests: each
// helper takes a testing.TB and stops what it starts at cleanup.
//
//	srv, _ := socket.NewServer(socket.Config{Name: "users"}, socket.WithoutAuth())
//	_ = users.Register(srv, users.NewMemoryStore())
//	c := sockettest.Start(t, srv) // served on loopback, dialed, both stopped at cleanup
//	admin := sockettest.As(t, "v1", "root", "admin")
//	user, err := caller.Call[users.User](admin, c, "GET_USER", "1", nil)
//
// Serve alone returns the address, for tests that dial it their own way;
// WaitJoined waits for callers to share a coalesced flight; Events
// follows a subscription. The runtime's own tests start servers with the
// test keys (StartServer, Keys) or whose actions wait for the test
// (StartGated), and dial them (Dial, DialServer, RawConn).
package sockettest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// deadline bounds the contexts As returns and the wait in WaitJoined.
const deadline = 20 * time.Second

// Serve serves srv on a fresh loopback port until the test ends and
// returns its address. At cleanup it cancels Serve's context, waits for
// the drain, and reports an error from Serve with t.Errorf.
func Serve(t testing.TB, srv *socket.Server) (addr string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// Start serves srv as Serve does and returns a client dialed to it with
// opts. The client closes at cleanup, before the server stops.
func Start(t testing.TB, srv *socket.Server, opts ...caller.Option) *caller.Client {
	t.Helper()
	addr := Serve(t, srv)
	c, err := caller.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// As returns a context whose request meta carries the API version and a
// principal with subject and roles. Its 20-second deadline keeps a stuck
// request from hanging the test; it is cancelled at cleanup.
func As(t testing.TB, version, subject string, roles ...string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return WithPrincipal(ctx, version, subject, roles...)
}

// WithPrincipal returns ctx with request meta that carries the API version
// and a principal with subject and roles.
func WithPrincipal(ctx context.Context, version, subject string, roles ...string) context.Context {
	return caller.ContextWithMeta(ctx, socket.Meta{APIVersion: version, Principal: socket.Principal{Subject: subject, Roles: roles}})
}

// Events subscribes c to topic (or a pattern) until the test ends and
// returns a function that waits for the next event, failing the test when
// none comes within 20 seconds. Events arrive in order.
func Events(t testing.TB, c *caller.Client, topic string) (next func() caller.Event) {
	t.Helper()
	ch := make(chan caller.Event, 1024)
	stop, err := c.Subscribe(context.Background(), topic, func(e caller.Event) { ch <- e })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return func() caller.Event {
		t.Helper()
		select {
		case e := <-ch:
			return e
		case <-time.After(deadline):
			t.Fatalf("no event on %s within %v", topic, deadline)
			return caller.Event{}
		}
	}
}
