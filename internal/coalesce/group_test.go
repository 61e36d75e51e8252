package coalesce_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

const testDeadline = 20 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return ctx
}

// outcome is what one Do call returned.
type outcome struct {
	res    json.RawMessage
	err    error
	shared bool
}

// do calls c.Do and sends its outcome on out.
func do(ctx context.Context, c *coalesce.Group, key string, fn func(context.Context) (json.RawMessage, error), out chan<- outcome) {
	res, err, shared := c.Do(ctx, key, fn)
	out <- outcome{res, err, shared}
}

func recv[T any](t testing.TB, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(testDeadline):
		t.Fatal("no value within the test deadline")
		panic("unreachable")
	}
}

var errNotFound = errors.New("no such thing")

// wantErr fails the test unless err is want (by errors.Is).
func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}

func TestGroupSharesOneRun(t *testing.T) {
	t.Parallel()
	var c coalesce.Group
	ctx := testContext(t)
	var runs atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (json.RawMessage, error) {
		runs.Add(1)
		<-release
		return json.RawMessage(`{"n":1}`), nil
	}
	const n = 50
	outs := make(chan outcome, n)
	for range n {
		go do(ctx, &c, "k", fn, outs)
	}
	sockettest.WaitJoined(t, n, &c)
	// A different key is not held up by the flight.
	if res, err, shared := c.Do(ctx, "other", func(context.Context) (json.RawMessage, error) { return json.RawMessage(`2`), nil }); err != nil || string(res) != "2" || shared {
		t.Fatalf("other key: %s, %v, shared %v", res, err, shared)
	}
	close(release)
	shared := 0
	for range n {
		got := recv(t, outs)
		if got.err != nil || string(got.res) != `{"n":1}` {
			t.Fatalf("waiter got %s, %v", got.res, got.err)
		}
		if got.shared {
			shared++
		}
	}
	if runs.Load() != 1 || shared != n-1 {
		t.Fatalf("fn ran %d times, %d callers shared; want 1 run and %d shared", runs.Load(), shared, n-1)
	}
	// The key is free again: the next call runs fresh.
	res, err, sh := c.Do(ctx, "k", func(context.Context) (json.RawMessage, error) { return json.RawMessage(`"fresh"`), nil })
	if err != nil || string(res) != `"fresh"` || sh {
		t.Fatalf("after the flight: %s, %v, shared %v", res, err, sh)
	}
}

func TestGroupSharesErrors(t *testing.T) {
	t.Parallel()
	var c coalesce.Group
	ctx := testContext(t)
	release := make(chan struct{})
	fn := func(context.Context) (json.RawMessage, error) {
		<-release
		return nil, errNotFound
	}
	outs := make(chan outcome, 3)
	for range 3 {
		go do(ctx, &c, "k", fn, outs)
	}
	sockettest.WaitJoined(t, 3, &c)
	close(release)
	for range 3 {
		wantErr(t, recv(t, outs).err, errNotFound)
	}
}

func TestGroupLeaderGivesUp(t *testing.T) {
	t.Parallel()
	var c coalesce.Group
	ctx := testContext(t)
	leaderCtx, cancelLeader := context.WithCancel(ctx)
	workCtx := make(chan context.Context, 1)
	release := make(chan struct{})
	fn := func(ctx context.Context) (json.RawMessage, error) {
		workCtx <- ctx
		select {
		case <-release:
			return json.RawMessage(`"done"`), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	leader, others := make(chan outcome, 1), make(chan outcome, 2)
	go do(leaderCtx, &c, "k", fn, leader)
	wctx := recv(t, workCtx)
	go do(ctx, &c, "k", fn, others)
	go do(ctx, &c, "k", fn, others)
	sockettest.WaitJoined(t, 3, &c)

	cancelLeader()
	wantErr(t, recv(t, leader).err, context.Canceled)
	if err := wctx.Err(); err != nil {
		t.Fatalf("the shared work was cancelled with its first caller: %v", err)
	}
	close(release)
	for range 2 {
		got := recv(t, others)
		if got.err != nil || string(got.res) != `"done"` || !got.shared {
			t.Fatalf("waiter after the leader left: %s, %v, shared %v", got.res, got.err, got.shared)
		}
	}
}

func TestGroupLastCallerCancelsWork(t *testing.T) {
	t.Parallel()
	var c coalesce.Group
	ctx := testContext(t)
	type meta struct{}
	// The work keeps the first caller's values, not its deadline.
	c1, cancel1 := context.WithTimeout(context.WithValue(ctx, meta{}, "first"), time.Hour)
	c2, cancel2 := context.WithCancel(ctx)
	workCtx := make(chan context.Context, 1)
	finish := make(chan struct{}) // the work winds down slowly after it is cancelled
	fn := func(ctx context.Context) (json.RawMessage, error) {
		workCtx <- ctx
		<-ctx.Done()
		<-finish
		return nil, ctx.Err()
	}
	o1, o2 := make(chan outcome, 1), make(chan outcome, 1)
	go do(c1, &c, "k", fn, o1)
	wctx := recv(t, workCtx)
	if wctx.Value(meta{}) != "first" {
		t.Fatal("the work's context lost the caller's values")
	}
	if _, ok := wctx.Deadline(); ok {
		t.Fatal("the work's context has the first caller's deadline")
	}
	go do(c2, &c, "k", fn, o2)
	sockettest.WaitJoined(t, 2, &c)

	cancel1()
	wantErr(t, recv(t, o1).err, context.Canceled)
	if wctx.Err() != nil {
		t.Fatal("the work was cancelled while a caller still waited")
	}
	cancel2()
	wantErr(t, recv(t, o2).err, context.Canceled)
	select {
	case <-wctx.Done():
	case <-time.After(testDeadline):
		t.Fatal("the work's context did not end after every caller left")
	}

	// The cancelled work has not returned yet; a new caller must not join
	// it (it would get the others' cancellation) but run afresh.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err, shared := c.Do(short, "k", func(context.Context) (json.RawMessage, error) { return json.RawMessage(`"fresh"`), nil })
	close(finish)
	if err != nil || string(res) != `"fresh"` || shared {
		t.Fatalf("a caller after every other left got %s, %v (shared %v); want a fresh run", res, err, shared)
	}
}

func TestGroupPanicReachesEveryWaiter(t *testing.T) {
	t.Parallel()
	var c coalesce.Group
	ctx := testContext(t)
	release := make(chan struct{})
	var runs atomic.Int32
	boom := func(context.Context) (json.RawMessage, error) {
		runs.Add(1)
		<-release
		panic("boom")
	}
	const n = 10
	outs := make(chan outcome, n)
	for range n {
		go do(ctx, &c, "k", boom, outs)
	}
	sockettest.WaitJoined(t, n, &c)
	close(release)
	for range n {
		got := recv(t, outs)
		// ErrAbandoned, never the panic's value.
		wantErr(t, got.err, coalesce.ErrAbandoned)
	}
	if runs.Load() != 1 {
		t.Fatalf("panicking work ran %d times, want 1", runs.Load())
	}
	res, err, shared := c.Do(ctx, "k", func(context.Context) (json.RawMessage, error) { return json.RawMessage(`"ok"`), nil })
	if err != nil || string(res) != `"ok"` || shared {
		t.Fatalf("after the panic: %s, %v, shared %v; want a fresh run", res, err, shared)
	}
}

func TestGroupGoexitIsAnError(t *testing.T) {
	t.Parallel()
	var c coalesce.Group
	ctx := testContext(t)
	// runtime.Goexit (t.FailNow in a handler, for one) ends the work
	// without a panic or a return: callers must not take that for a nil
	// result.
	res, err, _ := c.Do(ctx, "k", func(context.Context) (json.RawMessage, error) {
		runtime.Goexit()
		return json.RawMessage(`"unreachable"`), nil
	})
	if err == nil {
		t.Fatalf("work that exited without returning gave %q and no error", res)
	}
	wantErr(t, err, coalesce.ErrAbandoned)
	res, err, _ = c.Do(ctx, "k", func(context.Context) (json.RawMessage, error) { return json.RawMessage(`"ok"`), nil })
	if err != nil || string(res) != `"ok"` {
		t.Fatalf("after Goexit: %s, %v", res, err)
	}
}

// TestInlineGroup: the leader runs the work on its own goroutine; its
// giving up does not cancel the work for a waiting follower, and the work
// is cancelled once nobody waits.
func TestInlineGroup(t *testing.T) {
	t.Parallel()
	c := &coalesce.Group{Inline: true}
	started, release := make(chan struct{}), make(chan struct{})
	workErr := make(chan error, 1)
	work := func(ctx context.Context) (json.RawMessage, error) {
		close(started)
		select {
		case <-release:
			return json.RawMessage(`"done"`), nil
		case <-ctx.Done():
			workErr <- ctx.Err()
			return nil, ctx.Err()
		}
	}
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() { _, err, _ := c.Do(leaderCtx, "k", work); leader <- err }()
	<-started
	follower := make(chan string, 1)
	go func() {
		res, err, shared := c.Do(context.Background(), "k", work)
		if err != nil || !shared {
			follower <- fmt.Sprint("error: ", err, shared)
			return
		}
		follower <- string(res)
	}()
	sockettest.WaitJoined(t, 2, c) // the leader (running the work) and the follower
	cancelLeader()
	close(release)
	if got := <-follower; got != `"done"` {
		t.Fatalf("follower got %s", got)
	}
	<-leader
	select {
	case err := <-workErr:
		t.Fatalf("the work was cancelled while a follower waited: %v", err)
	default:
	}

	// Alone, a leader that gives up cancels the work.
	started, release = make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _, _, _ = c.Do(ctx, "k2", work); close(done) }()
	<-started
	cancel()
	select {
	case <-workErr:
	case <-time.After(10 * time.Second):
		t.Fatal("the work was not cancelled when its only caller gave up")
	}
	<-done
}
