package caller_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// heldServer registers HOLD, a write that reports each request's context
// on seen and returns when release closes, whatever its context says: only
// the caller can end a request in time.
func heldServer(t *testing.T, seen chan<- context.Context, release <-chan struct{}) *sockettest.Server {
	return sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Register: func(s *socket.Server) {
		must(t, s.Handle("HOLD", socket.HandlerFunc(func(ctx context.Context, _ *socket.Request) (json.RawMessage, error) {
			seen <- ctx
			<-release
			return json.RawMessage(`{}`), nil
		})))
	}})
}

type outcome struct {
	err  error
	took time.Time // when the request returned
}

// TestWithDeadlineExpiresByTheStream: requests made with WithDeadline (and
// meta added on top) are
// failed at their deadlines by their stream's one timer, a later request
// with an earlier deadline included, without a timer of their own; the
// error is the one a context.WithDeadline gives (DEADLINE_EXCEEDED, the
// outcome unknown once sent).
func TestWithDeadlineExpiresByTheStream(t *testing.T) {
	t.Parallel()
	seen := make(chan context.Context, 2)
	release := make(chan struct{})
	defer close(release)
	c := sockettest.DialServer(t, heldServer(t, seen, release))
	base := sockettest.Context(t)
	// A request waits for the first stream within its context, which
	// then makes its timer: the stream is up before the test starts.
	if _, err := c.Describe(base); err != nil {
		t.Fatal(err)
	}

	start := func(after time.Duration) (context.Context, time.Time, <-chan outcome) {
		at := time.Now().Add(after)
		ctx, cancel := caller.WithDeadline(base, at)
		t.Cleanup(cancel)
		out := make(chan outcome, 1)
		go func() {
			// Meta added on top (as the gateway's read path does) ends
			// with ctx: the request still waits without a timer.
			rctx := caller.ContextWithMeta(ctx, socket.Meta{RequestID: "r"})
			_, err := c.Request(rctx, "HOLD", "", nil)
			out <- outcome{err: err, took: time.Now()}
		}()
		return ctx, at, out
	}
	late, lateAt, lateOut := start(time.Second)
	sockettest.Recv(t, seen)
	early, earlyAt, earlyOut := start(100 * time.Millisecond)
	sockettest.Recv(t, seen)

	for _, r := range []struct {
		name string
		ctx  context.Context
		at   time.Time
		out  <-chan outcome
	}{{"early", early, earlyAt, earlyOut}, {"late", late, lateAt, lateOut}} {
		o := sockettest.Recv(t, r.out)
		e := sockettest.WantCode(t, o.err, status.CodeDeadlineExceeded)
		if o.took.Before(r.at) {
			t.Errorf("%s: failed %v before its deadline", r.name, r.at.Sub(o.took))
		}
		if e.Details[wire.DetailReason] != wire.ReasonOutcomeUnknown {
			t.Errorf("%s: details %v, want reason %s (it was sent)", r.name, e.Details, wire.ReasonOutcomeUnknown)
		}
		if caller.TimerMade(r.ctx) {
			t.Errorf("%s: the request made a timer for its context", r.name)
		}
	}
}

// TestWithDeadlineCancelReachesTheHandler: cancelling a WithDeadline
// context, or its parent, fails the request CANCELED and sends the cancel
// frame that ends the handler's context.
func TestWithDeadlineCancelReachesTheHandler(t *testing.T) {
	t.Parallel()
	for _, parent := range []bool{false, true} {
		seen := make(chan context.Context, 1)
		release := make(chan struct{})
		c := sockettest.DialServer(t, heldServer(t, seen, release))
		pctx, pcancel := context.WithCancel(sockettest.Context(t))
		ctx, cancel := caller.WithDeadline(pctx, time.Now().Add(time.Hour))
		errc := make(chan error, 1)
		go func() { _, err := c.Request(ctx, "HOLD", "", nil); errc <- err }()
		hctx := sockettest.Recv(t, seen)
		if parent {
			pcancel()
		} else {
			cancel()
		}
		sockettest.WantCode(t, sockettest.Recv(t, errc), status.CodeCanceled)
		<-hctx.Done() // the cancel frame reached the handler
		if !errors.Is(hctx.Err(), context.Canceled) {
			t.Fatalf("parent %v: handler ctx err = %v, want Canceled", parent, hctx.Err())
		}
		cancel()
		pcancel()
		close(release)
	}
}

// TestWithDeadlinePastFailsAtOnce: a request whose deadline has passed
// before it is sent fails DEADLINE_EXCEEDED, as with context.WithDeadline.
func TestWithDeadlinePastFailsAtOnce(t *testing.T) {
	t.Parallel()
	seen := make(chan context.Context, 1)
	release := make(chan struct{})
	defer close(release)
	c := sockettest.DialServer(t, heldServer(t, seen, release))
	if _, err := c.Describe(sockettest.Context(t)); err != nil {
		t.Fatal(err) // the stream is up and the action known
	}
	ctx, cancel := caller.WithDeadline(sockettest.Context(t), time.Now().Add(-time.Millisecond))
	defer cancel()
	_, err := c.Request(ctx, "HOLD", "", nil)
	sockettest.WantCode(t, err, status.CodeDeadlineExceeded)
}
