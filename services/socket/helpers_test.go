package socket_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testKey      = "test-secret"
	gatewayKey   = "gateway-secret"
	readOnlyKey  = "read-only-secret"
	testDeadline = 20 * time.Second
)

// testKeys returns a keyring with a plain key, a delegating gateway key and
// a key limited to ECHO.
func testKeys(t testing.TB) *socket.Keyring {
	t.Helper()
	kr, err := socket.NewKeyring(
		socket.Key{Name: "test", Secret: testKey, Roles: []string{"service"}},
		socket.Key{Name: "gateway", Hash: socket.HashKey(gatewayKey), Delegate: true},
		socket.Key{Name: "reader", Secret: readOnlyKey, Actions: []string{"ECHO"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// testServer is a socket server running in the test.
type testServer struct {
	*socket.Server
	Addr   string // loopback TCP address, or "bufnet"
	Keys   *socket.Keyring
	cancel context.CancelFunc
	done   chan error
	dialer func(context.Context, string) (net.Conn, error) // set for bufconn
}

// serverSpec says how to build a test server.
type serverSpec struct {
	name     string
	addr     string // listen here instead of a fresh port ("" = 127.0.0.1:0)
	bufconn  bool
	opts     []socket.ServerOption
	register func(*socket.Server)
}

// startServer starts a server and stops it (gracefully) at cleanup.
func startServer(t testing.TB, spec serverSpec) *testServer {
	t.Helper()
	if spec.name == "" {
		spec.name = "test"
	}
	ts := &testServer{Keys: testKeys(t), done: make(chan error, 1)}
	opts := append([]socket.ServerOption{socket.WithKeys(ts.Keys), socket.WithDrainTimeout(5 * time.Second)}, spec.opts...)
	srv, err := socket.NewServer(socket.Config{Name: spec.name, Version: "test"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	if spec.register != nil {
		spec.register(srv)
	} else {
		registerEcho(t, srv)
	}
	var lis net.Listener
	if spec.bufconn {
		bl := bufconn.Listen(1 << 20)
		lis = bl
		ts.Addr = "bufnet"
		ts.dialer = func(ctx context.Context, _ string) (net.Conn, error) { return bl.DialContext(ctx) }
	} else {
		if spec.addr == "" {
			spec.addr = "127.0.0.1:0"
		}
		lis, err = net.Listen("tcp", spec.addr)
		if err != nil {
			t.Fatal(err)
		}
		ts.Addr = lis.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() { ts.done <- srv.Serve(ctx, lis) }()
	t.Cleanup(ts.Shutdown)
	return ts
}

// Shutdown drains the server and waits for Serve to return.
func (ts *testServer) Shutdown() {
	ts.cancel()
	if err := <-ts.done; err != nil {
		panic("Serve: " + err.Error())
	}
	ts.done <- nil // later calls return at once
}

// dial returns a client for the servers, closed at cleanup.
func dial(t testing.TB, target string, opts ...socket.DialOption) *socket.Client {
	t.Helper()
	opts = append([]socket.DialOption{socket.WithKey(testKey), socket.WithBackoff(10*time.Millisecond, 200*time.Millisecond)}, opts...)
	c, err := socket.Dial(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialServer dials one test server (TCP or bufconn).
func dialServer(t testing.TB, ts *testServer, opts ...socket.DialOption) *socket.Client {
	t.Helper()
	if ts.dialer != nil {
		opts = append(opts, socket.WithGRPCDialOptions(grpc.WithContextDialer(ts.dialer)))
		return dial(t, "passthrough:///bufnet", opts...)
	}
	return dial(t, ts.Addr, opts...)
}

// rawConn opens a plain gRPC connection to a test server, for tests that
// speak the wire protocol themselves.
func rawConn(t testing.TB, ts *testServer) socketv1.SocketServiceClient {
	t.Helper()
	return socketv1.NewSocketServiceClient(rawConnCC(t, ts))
}

// rawConnCC is rawConn's connection.
func rawConnCC(t testing.TB, ts *testServer) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	target := ts.Addr
	if ts.dialer != nil {
		opts = append(opts, grpc.WithContextDialer(ts.dialer))
		target = "passthrough:///bufnet"
	}
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func withKey(ctx context.Context, key string) context.Context {
	return withMetadata(ctx, socket.MetadataAuthorization, "Bearer "+key)
}

func withMetadata(ctx context.Context, k, v string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, k, v)
}

// echoIn and echoOut are the test actions' bodies.
type echoIn struct {
	Text  string `json:"text"`
	Delay int    `json:"delay_ms,omitempty"`
}

type echoOut struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// registerEcho registers ECHO (a read that waits delay_ms, then returns
// the id and text) and BOOM (panics).
func registerEcho(t testing.TB, srv *socket.Server) {
	t.Helper()
	must(t, srv.Handle("ECHO", socket.Typed(func(ctx context.Context, id string, in echoIn) (echoOut, error) {
		if in.Delay > 0 {
			select {
			case <-time.After(time.Duration(in.Delay) * time.Millisecond):
			case <-ctx.Done():
				return echoOut{}, ctx.Err()
			}
		}
		return echoOut{ID: id, Text: in.Text}, nil
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

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails unless err is an *socket.Error with the code.
func wantCode(t testing.TB, err error, code socket.Code) *socket.Error {
	t.Helper()
	var e *socket.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want a *socket.Error with code %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%v), want %s", e.Code, e, code)
	}
	return e
}
