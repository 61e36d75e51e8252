package natstest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is an embedded NATS server with JetStream that a test stops and
// starts again on the same loopback port and store, as an operator
// restarts one: clients reconnect to the same URL and streams keep what
// they stored.
type Server struct {
	// URL is the server's client URL, the same across restarts.
	URL  string
	opts server.Options

	mu sync.Mutex     // guards ns
	ns *server.Server // nil while stopped
}

// Restartable starts a Server on a fresh loopback port with its store in
// a temporary directory of the test's, shut down at cleanup.
func Restartable(t testing.TB) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	s := &Server{opts: server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	}}
	s.Start(t)
	s.URL = s.ns.ClientURL()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server again (a no-op while it runs) and waits until
// it takes connections.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns != nil {
		return
	}
	opts := s.opts // the server keeps and changes its options
	s.ns = launch(t, &opts)
}

// Stop shuts the server down, closing every client's connection, and
// waits until it has stopped. A no-op while it is stopped.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns == nil {
		return
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.ns = nil
}

// Reconnecting is Connect for a connection that outlives a restart: it
// reconnects without end, every 50 ms, as services and gateways do (more
// slowly).
func Reconnecting(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(t.Name()), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
