package sockettest

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

// The secrets of the keys a Server accepts (see Keys).
const (
	// TestKey is a plain key with role "service"; Dial presents it.
	TestKey = "test-secret"
	// GatewayKey delegates: it may name another principal in a request.
	GatewayKey = "gateway-secret"
	// ReaderKey may call ECHO only.
	ReaderKey = "read-only-secret"
)

// Keys returns a keyring with the three test keys: "test" (TestKey),
// "gateway" (GatewayKey, stored as a hash, delegating) and "reader"
// (ReaderKey, limited to ECHO).
func Keys(t testing.TB) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.New(
		keyring.Key{Name: "test", Secret: TestKey, Roles: []string{"service"}},
		keyring.Key{Name: "gateway", Hash: keyring.Hash(GatewayKey), Delegate: true},
		keyring.Key{Name: "reader", Secret: ReaderKey, Actions: []string{"ECHO"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// Server is a socket server running in the test, with the test keys.
type Server struct {
	*socket.Server
	Addr   string // loopback TCP address, or "bufnet"
	Keys   *keyring.Keyring
	cancel context.CancelFunc
	done   chan error
	dialer func(context.Context, string) (net.Conn, error) // set for bufconn
}

// Spec says how to build a test server. The zero Spec is a server named
// "test" on a fresh loopback port with ECHO and BOOM (see RegisterEcho).
type Spec struct {
	Name     string
	Addr     string // listen here instead of a fresh port ("" = 127.0.0.1:0)
	Bufconn  bool   // serve on an in-memory listener instead
	Opts     []socket.ServerOption
	Register func(*socket.Server) // registers the actions; nil: RegisterEcho
}

// StartServer starts a server and stops it (gracefully) at cleanup.
func StartServer(t testing.TB, spec Spec) *Server {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "test"
	}
	ts := &Server{Keys: Keys(t), done: make(chan error, 1)}
	opts := append([]socket.ServerOption{socket.WithKeys(ts.Keys), socket.WithDrainTimeout(5 * time.Second)}, spec.Opts...)
	srv, err := socket.NewServer(socket.Config{Name: spec.Name, Version: "test"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	if spec.Register != nil {
		spec.Register(srv)
	} else {
		RegisterEcho(t, srv)
	}
	lis := ts.listen(t, spec)
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() { ts.done <- srv.Serve(ctx, lis) }()
	t.Cleanup(ts.Shutdown)
	return ts
}

// listen opens the server's listener as spec says.
func (ts *Server) listen(t testing.TB, spec Spec) net.Listener {
	if spec.Bufconn {
		bl := bufconn.Listen(1 << 20)
		ts.Addr = "bufnet"
		ts.dialer = func(ctx context.Context, _ string) (net.Conn, error) { return bl.DialContext(ctx) }
		return bl
	}
	if spec.Addr == "" {
		spec.Addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", spec.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ts.Addr = lis.Addr().String()
	return lis
}

// Shutdown drains the server and waits for Serve to return.
func (ts *Server) Shutdown() {
	ts.cancel()
	if err := <-ts.done; err != nil {
		panic("Serve: " + err.Error())
	}
	ts.done <- nil // later calls return at once
}

// Dial returns a client for the servers at target, presenting TestKey
// and reconnecting fast, closed at cleanup.
func Dial(t testing.TB, target string, opts ...caller.Option) *caller.Client {
	t.Helper()
	opts = append([]caller.Option{caller.WithKey(TestKey), caller.WithBackoff(10*time.Millisecond, 200*time.Millisecond)}, opts...)
	c, err := caller.Dial(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// DialServer is Dial for one test server (TCP or bufconn).
func DialServer(t testing.TB, ts *Server, opts ...caller.Option) *caller.Client {
	t.Helper()
	if ts.dialer != nil {
		opts = append(opts, caller.WithGRPCDialOptions(grpc.WithContextDialer(ts.dialer)))
		return Dial(t, "passthrough:///bufnet", opts...)
	}
	return Dial(t, ts.Addr, opts...)
}

// Target is what a plain gRPC client dials to reach the server, with the
// options it needs besides credentials.
func (ts *Server) Target() (string, []grpc.DialOption) {
	if ts.dialer != nil {
		return "passthrough:///bufnet", []grpc.DialOption{grpc.WithContextDialer(ts.dialer)}
	}
	return ts.Addr, nil
}

// RawConn opens a plain gRPC connection to a test server, for tests that
// speak the wire protocol themselves.
func RawConn(t testing.TB, ts *Server) socketv1.SocketServiceClient {
	t.Helper()
	return socketv1.NewSocketServiceClient(RawConnCC(t, ts))
}

// RawConnCC is RawConn's connection.
func RawConnCC(t testing.TB, ts *Server) *grpc.ClientConn {
	t.Helper()
	target, opts := ts.Target()
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// WithKey returns ctx with the metadata that presents key on a raw
// connection.
func WithKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, socket.MetadataAuthorization, "Bearer "+key)
}

// EchoIn is ECHO's body: the text to echo, after a delay.
type EchoIn struct {
	Text  string `json:"text"`
	Delay int    `json:"delay_ms,omitempty"`
}

// EchoOut is ECHO's result: the request's id and text.
type EchoOut struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// RegisterEcho registers ECHO (a read that waits delay_ms, then returns
// the id and text) and BOOM (panics).
func RegisterEcho(t testing.TB, srv *socket.Server) {
	t.Helper()
	must(t, srv.Handle("ECHO", socket.Typed(func(ctx context.Context, id string, in EchoIn) (EchoOut, error) {
		if in.Delay > 0 {
			select {
			case <-time.After(time.Duration(in.Delay) * time.Millisecond):
			case <-ctx.Done():
				return EchoOut{}, ctx.Err()
			}
		}
		return EchoOut{ID: id, Text: in.Text}, nil
	}), socket.Read()))
	must(t, srv.Handle("BOOM", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
		panic("boom")
	})))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Context returns a context with a 20-second deadline, cancelled at
// cleanup: a stuck request cannot hang the test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// WantCode fails the test unless err is a *status.Error with the code,
// and returns it.
func WantCode(t testing.TB, err error, code status.Code) *status.Error {
	t.Helper()
	var e *status.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want a *status.Error with code %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%v), want %s", e.Code, e, code)
	}
	return e
}

// Stats returns what the server's Describe says of an action's stats,
// failing the test when it has no such action.
func (ts *Server) Stats(t testing.TB, action string) *socketv1.ActionStats {
	t.Helper()
	d, err := RawConn(t, ts).Describe(WithKey(Context(t), TestKey), &socketv1.DescribeRequest{})
	must(t, err)
	for _, a := range d.GetActions() {
		if a.GetName() == action {
			return a.GetStats()
		}
	}
	t.Fatalf("no action %s in %v", action, d)
	return nil
}
