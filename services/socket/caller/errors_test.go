package caller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	grpcstatus "google.golang.org/grpc/status"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// errSQL stands for a driver error that names an address.
var errSQL = errors.New("sql: dial tcp 127.0.0.1:5432: connect: connection refused")

// leaks are what a client-facing message must never show.
var leaks = regexp.MustCompile(`(?i)127\.0\.0\.1|dial|sql|connection refused|[a-z0-9\]]:\d{2,5}\b`)

// causeText is everything the error's chain says, for logs.
func causeText(err error) string {
	var b strings.Builder
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		b.WriteString(err.Error())
		b.WriteString("\n")
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return b.String()
}

// leakResolver serves the scheme leaktest:///, registered when the package
// loads: resolver.Register must not run while tests in parallel dial.
var leakResolver = func() *manual.Resolver {
	rb := manual.NewBuilderWithScheme("leaktest")
	resolver.Register(rb)
	return rb
}()

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := lis.Addr().String()
	must(t, lis.Close())
	return addr
}

func TestClientFacingMessagesCarryNoInternalCause(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Register: func(s *socket.Server) {
		must(t, s.Handle("WRAPPED", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
			return nil, fmt.Errorf("load user: %w", errSQL)
		})))
		must(t, s.Handle("CAUSED", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
			return nil, socket.Errorf(socket.CodeUnavailable, "the store is unavailable").WithCause(errSQL)
		})))
		must(t, s.Handle("HOLD", socket.HandlerFunc(func(ctx context.Context, _ *socket.Request) (json.RawMessage, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})))
		must(t, s.Handle("BAD_JSON", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
			return json.RawMessage(`{"n":"x"}`), nil
		})))
	}})

	rb := leakResolver

	type tc struct {
		name      string
		run       func(t *testing.T) error
		code      status.Code
		wantCause string // what the cause must still say, for logs
		causeIs   error  // errors.Is must find it, when set
	}
	cases := []tc{
		{name: "dial refused", code: socket.CodeUnavailable, wantCause: "connection refused", run: func(t *testing.T) error {
			c := sockettest.Dial(t, freeAddr(t))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.Request(ctx, "ECHO", "1", nil)
			return err
		}},
		{name: "resolve failure", code: socket.CodeUnavailable, wantCause: "no such host", run: func(t *testing.T) error {
			c := sockettest.Dial(t, "leaktest:///users")
			rb.CC().ReportError(errors.New("lookup users on 10.0.0.53:53: no such host"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.Request(ctx, "ECHO", "1", nil)
			return err
		}},
		{name: "stream broken", code: socket.CodeUnavailable, wantCause: "", run: func(t *testing.T) error {
			a, na := countingInstance(t, "", make(chan struct{}))
			c := sockettest.Dial(t, a.Addr)
			errc := make(chan error, 1)
			go func() {
				_, err := c.Request(sockettest.Context(t), "WRITE", "1", []byte(`{"delay_ms":60000}`))
				errc <- err
			}()
			<-na.writeStarted
			a.Stop()
			return <-errc
		}},
		{name: "client closed", code: socket.CodeUnavailable, run: func(t *testing.T) error {
			c := sockettest.Dial(t, ts.Addr)
			must(t, c.Close())
			_, err := c.Request(sockettest.Context(t), "ECHO", "1", nil)
			return err
		}},
		{name: "handler returns a wrapped error", code: socket.CodeInternal, run: func(t *testing.T) error {
			_, err := sockettest.Dial(t, ts.Addr).Request(sockettest.Context(t), "WRAPPED", "1", nil)
			return err
		}},
		{name: "unary call, handler returns a wrapped error", code: socket.CodeInternal, run: func(t *testing.T) error {
			r, err := sockettest.RawConn(t, ts).Call(sockettest.WithKey(sockettest.Context(t), sockettest.TestKey), &socketv1.CallRequest{Request: &socketv1.Request{Action: "WRAPPED"}})
			must(t, err)
			pe := r.GetResponse().GetError()
			return &status.Error{Code: status.Code(pe.GetCode()), Message: pe.GetMessage()}
		}},
		{name: "handler error with a cause", code: socket.CodeUnavailable, run: func(t *testing.T) error {
			_, err := sockettest.Dial(t, ts.Addr).Request(sockettest.Context(t), "CAUSED", "1", nil)
			return err
		}},
		{name: "undecodable result", code: socket.CodeInternal, wantCause: "cannot unmarshal", run: func(t *testing.T) error {
			_, err := caller.Call[struct{ N int }](sockettest.Context(t), sockettest.Dial(t, ts.Addr), "BAD_JSON", "1", nil)
			return err
		}},
		{name: "FromStatus of a transport error", code: socket.CodeUnavailable, wantCause: "connection refused", run: func(*testing.T) error {
			return status.FromGRPC(grpcstatus.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`))
		}},
		{name: "FromStatus of a plain error", code: socket.CodeUnavailable, wantCause: "connection refused", causeIs: errSQL, run: func(*testing.T) error {
			return status.FromGRPC(errSQL)
		}},
		{name: "Errorf with a cause", code: socket.CodeInternal, wantCause: "connection refused", causeIs: errSQL, run: func(*testing.T) error {
			return socket.Errorf(socket.CodeInternal, "could not load the user").WithCause(fmt.Errorf("load: %w", errSQL))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run(t)
			e := sockettest.WantCode(t, err, c.code)
			if leaks.MatchString(e.Message) || leaks.MatchString(e.Error()) {
				t.Fatalf("client-facing message leaks an internal cause: %q", e.Message)
			}
			if b, _ := json.Marshal(e); leaks.MatchString(string(b)) {
				t.Fatalf("the error's JSON leaks an internal cause: %s", b)
			}
			if c.wantCause != "" && !strings.Contains(causeText(errors.Unwrap(e)), c.wantCause) {
				t.Fatalf("the cause lost %q: %q", c.wantCause, causeText(errors.Unwrap(e)))
			}
			if c.causeIs != nil && !errors.Is(err, c.causeIs) {
				t.Fatalf("errors.Is does not find the cause in %v", err)
			}
		})
	}
}
