package access_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/streamgate/streamgate/services/internal/access"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

func TestSignedIn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		subject string
		want    bool
	}{{"", false}, {socket.AnonymousSubject, false}, {"u1", true}} {
		if got := access.SignedIn(socket.Principal{Subject: tc.subject}); got != tc.want {
			t.Errorf("SignedIn(%q) = %v, want %v", tc.subject, got, tc.want)
		}
	}
}

var ok = socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
	return json.RawMessage(`"ran"`), nil
})

func serve(h socket.Handler, p socket.Principal) (string, error) {
	ctx := caller.ContextWithMeta(context.Background(), socket.Meta{Principal: p})
	out, err := h.ServeAction(ctx, &socket.Request{Action: "X", Meta: socket.Meta{Principal: p}})
	return string(out), err
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	admin := socket.Principal{Subject: "root", Roles: []string{socket.RoleAdmin}}
	user := socket.Principal{Subject: "u1"}
	anon := socket.Principal{Subject: socket.AnonymousSubject}
	for _, tc := range []struct {
		name    string
		h       socket.Handler
		p       socket.Principal
		code    status.Code
		message string
	}{
		{"admin passes AdminOnly", access.AdminOnly("do it")(ok), admin, "", ""},
		{"user refused by AdminOnly", access.AdminOnly("do it")(ok), user, socket.CodePermissionDenied, "only admins may do it"},
		{"user passes SignInOnly", access.SignInOnly("sign in")(ok), user, "", ""},
		{"anonymous refused by SignInOnly", access.SignInOnly("sign in, 100%")(ok), anon, socket.CodeUnauthenticated, "sign in, 100%"},
		{"nobody refused by SignInOnly", access.SignInOnly("sign in")(ok), socket.Principal{}, socket.CodeUnauthenticated, "sign in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := serve(tc.h, tc.p)
			if tc.code == "" {
				if err != nil || out != `"ran"` {
					t.Fatalf("got %s, %v; want the handler to run", out, err)
				}
				return
			}
			if e := status.AsError(err); err == nil || e.Code != tc.code || e.Message != tc.message {
				t.Fatalf("got %s, %v; want %s %q", out, err, tc.code, tc.message)
			}
		})
	}
}
