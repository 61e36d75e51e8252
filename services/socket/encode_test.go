package socket_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// A frame that cannot be encoded (a string that is not UTF-8, a frame over
// the size limit) fails only its own request: requests in flight on the
// same stream are answered, and later ones use the same stream.
func TestUnencodableFrameFailsOnlyItsRequest(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	var holds sync.Map // resource id → chan struct{} closed to answer HOLD
	started := make(chan struct{}, 64)
	ts := sockettest.StartServer(t, sockettest.Spec{Opts: []socket.ServerOption{socket.WithMaxFrameSize(limit)}, Register: func(srv *socket.Server) {
		sockettest.RegisterEcho(t, srv)
		// HOLD is a write that waits for the test: writes are never sent
		// twice, so a broken stream shows as a failed HOLD.
		must(t, srv.Handle("HOLD", socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
			release, _ := holds.Load(r.ResourceID)
			started <- struct{}{}
			select {
			case <-release.(chan struct{}):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return json.RawMessage(`{"held":true}`), nil
		})))
		must(t, srv.Handle("BAD_MESSAGE", socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
			return nil, socket.Errorf(socket.CodeNotFound, "no thing named %s", "\xff\xfe")
		}), socket.Read()))
		must(t, srv.Handle("BAD_DETAILS", socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
			return nil, socket.Errorf(socket.CodeNotFound, "no thing").WithDetails(map[string]any{"name": "\xc3\x28", "\xff": "key"})
		}), socket.Read()))
		must(t, srv.Handle("TOO_BIG", socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
			return json.Marshal(strings.Repeat("x", 2*limit))
		}), socket.Read()))
	}})
	c := sockettest.DialServer(t, ts, caller.WithMaxFrameSize(limit))

	cases := []struct {
		name       string
		action, id string
		body       any
		ctx        func(context.Context) context.Context
		code       status.Code
		contains   string
	}{
		{name: "resource id", action: "ECHO", id: "\xff", code: socket.CodeInvalidArgument, contains: "resource_id"},
		{name: "resource id, overlong", action: "ECHO", id: "\xc3\x28", code: socket.CodeInvalidArgument, contains: "UTF-8"},
		{name: "action", action: "ECHO\xff", code: socket.CodeInvalidArgument, contains: "action"},
		{name: "request id in meta", action: "ECHO", id: "1", ctx: func(ctx context.Context) context.Context {
			return caller.ContextWithMeta(ctx, socket.Meta{RequestID: "req-\xff"})
		}, code: socket.CodeInvalidArgument, contains: "request_id"},
		{name: "request over the frame limit", action: "ECHO", id: "1", body: map[string]string{"text": strings.Repeat("y", 2*limit)}, code: socket.CodeInvalidArgument, contains: "limit"},
		{name: "answer with an invalid message is sanitized", action: "BAD_MESSAGE", id: "1", code: socket.CodeNotFound, contains: "no thing named \uFFFD"},
		{name: "answer with invalid details is sanitized", action: "BAD_DETAILS", id: "1", code: socket.CodeNotFound, contains: "no thing"},
		{name: "answer over the frame limit", action: "TOO_BIG", id: "1", code: socket.CodeInternal, contains: "could not be sent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Writes in flight on the stream while the bad frame goes.
			const held = 4
			release := make(chan struct{})
			holds.Store(tc.name, release)
			var wg sync.WaitGroup
			errs := make(chan error, held)
			for range held {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := c.Request(ctx(t), "HOLD", tc.name, nil)
					errs <- err
				}()
			}
			for range held {
				select {
				case <-started:
				case <-ctx(t).Done():
					t.Fatal("the writes did not start")
				}
			}
			rctx := ctx(t)
			if tc.ctx != nil {
				rctx = tc.ctx(rctx)
			}
			_, err := c.Request(rctx, tc.action, tc.id, tc.body)
			var se *status.Error
			if !errors.As(err, &se) || se.Code != tc.code || !strings.Contains(se.Message, tc.contains) {
				t.Errorf("Request(%q, %q) = %v, want %s containing %q", tc.action, tc.id, err, tc.code, tc.contains)
			}
			if se != nil && strings.ContainsRune(se.Message, 0xff) {
				t.Errorf("message carries the raw byte: %q", se.Message)
			}
			// Requests on the same stream go on.
			out, err := caller.Call[sockettest.EchoOut](ctx(t), c, "ECHO", "after", sockettest.EchoIn{Text: "ok"})
			if err != nil || out.Text != "ok" {
				t.Errorf("ECHO after the bad frame = %+v, %v", out, err)
			}
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("a write in flight on the stream failed: %v", err)
				}
			}
		})
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return c
}
