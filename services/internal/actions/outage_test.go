package actions_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/streamgate/streamgate/services/internal/actions"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// TestOutagesAreUnavailable: a handler's error that says the database
// cannot be reached is UNAVAILABLE with a retry hint and no cause; other
// errors keep their codes.
func TestOutagesAreUnavailable(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for name, tc := range map[string]struct {
		err  error
		want status.Code
	}{
		"refused":   {fmt.Errorf("get user: %w", refused), socket.CodeUnavailable},
		"chosen":    {socket.Errorf(socket.CodeNotFound, "no user"), socket.CodeNotFound},
		"other":     {errors.New("decode lines: bad"), socket.CodeInternal},
		"cancelled": {fmt.Errorf("get user: %w", context.Canceled), socket.CodeCanceled},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, err := socket.NewServer(socket.Config{Name: "t"}, socket.WithoutAuth())
			if err != nil {
				t.Fatal(err)
			}
			r := actions.On(srv)
			r.Handle("FAIL", socket.Typed(func(context.Context, string, struct{}) (struct{}, error) { return struct{}{}, tc.err }))
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			c := sockettest.Start(t, srv)
			_, err = c.Request(sockettest.As(t, "v1", "root"), "FAIL", "", nil)
			e := status.AsError(err)
			if e == nil || e.Code != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			if tc.want == socket.CodeUnavailable && (e.Details[socket.DetailRetryAfterMs] == nil || e.Details[socket.DetailReason] != "database_unavailable") {
				t.Errorf("details %v: want a reason and a retry hint", e.Details)
			}
		})
	}
}
