package socket_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// countingServer registers ECHO that counts its runs.
func countingServer(t *testing.T, runs *atomic.Int64) *sockettest.Server {
	return sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Register: func(s *socket.Server) {
		must(t, s.Handle("ECHO", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
			runs.Add(1)
			return r.Body, nil
		}), socket.Read()))
	}})
}

func TestStreamRefusedBeforeAnyFrame(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		auth string // the authorization metadata; "" sends none
	}{
		{"missing key", ""},
		{"unknown key", "Bearer not-a-key"},
		{"wrong scheme", "Basic " + sockettest.TestKey},
		{"empty bearer", "Bearer "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var runs atomic.Int64
			ts := countingServer(t, &runs)
			ctx := sockettest.Context(t)
			if tc.auth != "" {
				ctx = withKeyRaw(ctx, tc.auth)
			}
			stream, err := sockettest.RawConn(t, ts).Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// A frame is on its way, but the service must refuse the stream
			// without reading it.
			_ = stream.Send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{Id: 1, Action: "ECHO"}}})
			_, err = stream.Recv()
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("Recv err = %v, want Unauthenticated", err)
			}
			if n := runs.Load(); n != 0 {
				t.Fatalf("handler ran %d times for a refused stream", n)
			}
			// The request library reports the refusal instead of hanging.
			c := sockettest.DialServer(t, ts, caller.WithKey("not-a-key"))
			_, err = c.Request(sockettest.Context(t), "ECHO", "", nil)
			sockettest.WantCode(t, err, socket.CodeUnauthenticated)
		})
	}
}

func TestRevokedKeyEndsOpenStreams(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	ts := countingServer(t, &runs)
	ctx := sockettest.Context(t)
	stream, err := sockettest.RawConn(t, ts).Connect(sockettest.WithKey(ctx, sockettest.TestKey))
	if err != nil {
		t.Fatal(err)
	}
	must(t, stream.Send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{Id: 1, Action: "ECHO", Payload: &socketv1.Request_BodyRaw{BodyRaw: []byte(`1`)}}}}))
	if r, err := stream.Recv(); err != nil || !r.GetResponse().GetOk() {
		t.Fatalf("first response %v, %v", r, err)
	}
	if !ts.Keys.Revoke("test") {
		t.Fatal("Revoke found no key")
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("open stream after revoke: err = %v, want Unauthenticated", err)
	}
	again, err := sockettest.RawConn(t, ts).Connect(sockettest.WithKey(ctx, sockettest.TestKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Recv(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("new stream after revoke: err = %v, want Unauthenticated", err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}

func TestKeyScopes(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Register: func(s *socket.Server) {
		sockettest.RegisterEcho(t, s)
		must(t, s.Handle("WHOAMI", socket.Typed(func(ctx context.Context, _ string, _ struct{}) (socket.Meta, error) {
			return socket.MetaFrom(ctx), nil
		}), socket.Read()))
	}})
	ctx := sockettest.Context(t)
	user := caller.ContextWithMeta(ctx, socket.Meta{APIVersion: "v2", Principal: socket.Principal{Subject: "user-7", Roles: []string{"admin"}}, RequestID: "req-1"})

	t.Run("action outside the key's scope", func(t *testing.T) {
		reader := sockettest.DialServer(t, ts, caller.WithKey(sockettest.ReaderKey))
		if _, err := reader.Request(ctx, "ECHO", "", nil); err != nil {
			t.Fatalf("ECHO with the reader key: %v", err)
		}
		_, err := reader.Request(ctx, "WHOAMI", "", nil)
		sockettest.WantCode(t, err, socket.CodePermissionDenied)
	})
	t.Run("principal from a key that may not delegate", func(t *testing.T) {
		_, err := sockettest.DialServer(t, ts).Request(user, "WHOAMI", "", nil)
		sockettest.WantCode(t, err, socket.CodePermissionDenied)
	})
	t.Run("principal from a delegating key", func(t *testing.T) {
		m, err := caller.Call[socket.Meta](user, sockettest.DialServer(t, ts, caller.WithKey(sockettest.GatewayKey)), "WHOAMI", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Principal.Subject != "user-7" || !m.Principal.HasRole("admin") || m.Caller != "gateway" || m.APIVersion != "v2" || m.RequestID != "req-1" {
			t.Fatalf("handler saw meta %+v", m)
		}
	})
	t.Run("the key itself is the principal", func(t *testing.T) {
		m, err := caller.Call[socket.Meta](ctx, sockettest.DialServer(t, ts), "WHOAMI", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Principal.Subject != "test" || !m.Principal.HasRole("service") {
			t.Fatalf("handler saw principal %+v", m.Principal)
		}
	})
}

func TestKeyringValidation(t *testing.T) {
	t.Parallel()
	cases := map[string][]keyring.Key{
		"no name":        {{Secret: "x"}},
		"no secret":      {{Name: "a"}},
		"both":           {{Name: "a", Secret: "x", Hash: keyring.Hash("x")}},
		"bad hash":       {{Name: "a", Hash: "sha256:zz"}},
		"duplicate name": {{Name: "a", Secret: "x"}, {Name: "a", Secret: "y"}},
		"same secret":    {{Name: "a", Secret: "x"}, {Name: "b", Hash: keyring.Hash("x")}},
	}
	for name, keys := range cases {
		if _, err := keyring.New(keys...); err == nil {
			t.Errorf("%s: NewKeyring accepted %+v", name, keys)
		}
	}
	if _, err := socket.NewServer(socket.Config{Name: "x"}); err == nil {
		t.Error("NewServer without keys or WithoutAuth succeeded")
	}
}

func withKeyRaw(ctx context.Context, auth string) context.Context {
	return withMetadata(ctx, socket.MetadataAuthorization, auth)
}
