package socket_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// TestHandlerDeadlineWithoutATimer: a handler's context carries the
// request's deadline as a value: a handler that never asks for Done costs
// no timer, and one that asks only after the deadline passed finds it
// ended (Err DeadlineExceeded, Done closed), as a timer context would be.
func TestHandlerDeadlineWithoutATimer(t *testing.T) {
	t.Parallel()
	seen := make(chan context.Context, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	checked := make(chan error, 1)
	// Coalesced reads share a run of their own, without the deadline.
	opts := []socket.ServerOption{socket.WithoutCoalescing()}
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Opts: opts, Register: func(s *socket.Server) {
		must(t, s.Handle("LOOK", socket.HandlerFunc(func(ctx context.Context, _ *socket.Request) (json.RawMessage, error) {
			seen <- ctx
			<-release
			if socket.TimerMade(ctx) {
				checked <- errors.New("the handler's context made a timer before Done was asked for")
				return nil, nil
			}
			err := ctx.Err()
			select {
			case <-ctx.Done():
			default:
				err = errors.New("Done is open after the deadline")
			}
			checked <- err
			return nil, nil
		}), socket.Read()))
	}})
	t.Cleanup(free) // before the server's cleanup, which waits for the handler
	c := sockettest.DialServer(t, ts, caller.WithoutCoalescing())
	ctx, cancel := context.WithTimeout(sockettest.Context(t), 200*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := c.Request(ctx, "LOOK", "", nil); errc <- err }()
	hctx := sockettest.Recv(t, seen)
	at, ok := hctx.Deadline()
	if !ok {
		t.Fatalf("the handler's context has no deadline: %v %T", hctx, hctx)
	}
	sockettest.WantCode(t, sockettest.Recv(t, errc), socket.CodeDeadlineExceeded)
	for time.Now().Before(at) {
		// The caller's deadline passed; the handler's may be a
		// millisecond later (timeout_ms is rounded up): wait for it.
		<-time.After(time.Until(at))
	}
	free()
	if err := sockettest.Recv(t, checked); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the handler found %v after its deadline, want DeadlineExceeded", err)
	}
}
