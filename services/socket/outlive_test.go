package socket_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// TestWriteOutlivesItsCaller: when the caller's stream ends while a write
// and a read run on it, the read is cancelled but the write is not cut
// halfway: its caller cannot tell whether it ran, and a retry with the
// same key finds its recorded outcome. Defect (issue 8): a PAY whose
// gateway's stream broke was cancelled mid-charge and recorded as failed
// "canceled", which every retry with the same key then replayed.
func TestWriteOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	srv, err := socket.NewServer(socket.Config{Name: "outlive"}, socket.WithoutAuth(), socket.WithoutCoalescing())
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 2)
	release := make(chan struct{})
	ended := map[string]chan error{"READ": make(chan error, 1), "WRITE": make(chan error, 1)}
	work := func(action string) socket.Handler {
		return socket.HandlerFunc(func(ctx context.Context, _ *socket.Request) (json.RawMessage, error) {
			started <- action
			select {
			case <-release:
			case <-ctx.Done():
			}
			ended[action] <- ctx.Err()
			return json.RawMessage(`{}`), nil
		})
	}
	if err := srv.Handle("READ", work("READ"), socket.Read()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle("WRITE", work("WRITE")); err != nil {
		t.Fatal(err)
	}
	client, err := caller.Dial(sockettest.Serve(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, action := range []string{"READ", "WRITE"} {
		go func() { _, _ = client.Request(ctx, action, "1", nil) }()
	}
	for range 2 {
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("the requests never started")
		}
	}
	client.Close() // the caller's stream ends under both

	select {
	case err := <-ended["READ"]:
		if err == nil {
			t.Fatal("the read ended without its context being cancelled")
		}
	case <-ctx.Done():
		t.Fatal("the read was not cancelled when its caller left")
	}
	// The server has seen the stream end; the write is still running.
	select {
	case err := <-ended["WRITE"]:
		t.Fatalf("the write ended when its caller left: %v", err)
	default:
	}
	close(release)
	select {
	case err := <-ended["WRITE"]:
		if err != nil {
			t.Fatalf("the write's context ended: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the write never ended")
	}
}
