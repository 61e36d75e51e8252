// Package echo is the smallest streamgate service: it answers ECHO with
// what it was sent. It shows the runtime's shape and is what the README's
// grpcurl walk-through talks to.
//
//	srv, _ := socket.NewServer(socket.Config{Name: "echo"}, socket.WithKeys(keys))
//	_ = echo.Register(srv)
//	_ = srv.Serve(ctx, lis)
package echo

import (
	"context"
	"time"

	"github.com/streamgate/streamgate/services/socket"
)

// Message is ECHO's body and result.
type Message struct {
	// ID is the request's resource id, echoed back.
	ID string `json:"id,omitempty"`
	// Text is echoed back.
	Text string `json:"text"`
	// Version is the API version the request came in on.
	Version string `json:"version,omitempty"`
	// Principal is who the service thinks is asking.
	Principal string `json:"principal,omitempty"`
}

// Register adds the echo actions to a server:
//   - ECHO (read): returns the text with the id, version and principal;
//   - SLEEP (read): waits the number of milliseconds in the body, or
//     until the request is cancelled.
func Register(srv *socket.Server) error {
	if err := srv.Handle("ECHO", socket.Typed(echo), socket.Read(), socket.Doc("Returns the text it was sent, with the id, API version and principal.")); err != nil {
		return err
	}
	return srv.Handle("SLEEP", socket.Typed(sleep), socket.Read(), socket.Doc("Waits for the given number of milliseconds (at most 60000)."))
}

func echo(ctx context.Context, id string, in Message) (Message, error) {
	m := socket.MetaFrom(ctx)
	return Message{ID: id, Text: in.Text, Version: m.APIVersion, Principal: m.Principal.Subject}, nil
}

func sleep(ctx context.Context, _ string, ms int) (int, error) {
	if ms < 0 || ms > 60000 {
		return 0, socket.Errorf(socket.CodeInvalidArgument, "sleep between 0 and 60000 ms, not %d", ms)
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		return ms, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
