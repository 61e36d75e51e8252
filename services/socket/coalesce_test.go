package socket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// outcome is what one Do call returned.
type outcome struct {
	res    json.RawMessage
	err    error
	shared bool
}

// do calls c.Do and sends its outcome on out.
func do(ctx context.Context, c *socket.Coalescer, key string, fn func(context.Context) (json.RawMessage, error), out chan<- outcome) {
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

func TestCoalescerSharesOneRun(t *testing.T) {
	t.Parallel()
	var c socket.Coalescer
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

func TestCoalescerSharesErrors(t *testing.T) {
	t.Parallel()
	var c socket.Coalescer
	ctx := testContext(t)
	release := make(chan struct{})
	fn := func(context.Context) (json.RawMessage, error) {
		<-release
		return nil, socket.Errorf(socket.CodeNotFound, "no such thing")
	}
	outs := make(chan outcome, 3)
	for range 3 {
		go do(ctx, &c, "k", fn, outs)
	}
	sockettest.WaitJoined(t, 3, &c)
	close(release)
	for range 3 {
		wantCode(t, recv(t, outs).err, socket.CodeNotFound)
	}
}

func TestCoalescerLeaderGivesUp(t *testing.T) {
	t.Parallel()
	var c socket.Coalescer
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
	wantCode(t, recv(t, leader).err, socket.CodeCanceled)
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

func TestCoalescerLastCallerCancelsWork(t *testing.T) {
	t.Parallel()
	var c socket.Coalescer
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
	wantCode(t, recv(t, o1).err, socket.CodeCanceled)
	if wctx.Err() != nil {
		t.Fatal("the work was cancelled while a caller still waited")
	}
	cancel2()
	wantCode(t, recv(t, o2).err, socket.CodeCanceled)
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

func TestCoalescerPanicReachesEveryWaiter(t *testing.T) {
	t.Parallel()
	var c socket.Coalescer
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
		e := wantCode(t, got.err, socket.CodeInternal)
		if strings.Contains(e.Message, "boom") {
			t.Fatalf("the panic value reached the caller: %q", e.Message)
		}
	}
	if runs.Load() != 1 {
		t.Fatalf("panicking work ran %d times, want 1", runs.Load())
	}
	res, err, shared := c.Do(ctx, "k", func(context.Context) (json.RawMessage, error) { return json.RawMessage(`"ok"`), nil })
	if err != nil || string(res) != `"ok"` || shared {
		t.Fatalf("after the panic: %s, %v, shared %v; want a fresh run", res, err, shared)
	}
}

func TestCoalescerGoexitIsAnError(t *testing.T) {
	t.Parallel()
	var c socket.Coalescer
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
	wantCode(t, err, socket.CodeInternal)
	res, err, _ = c.Do(ctx, "k", func(context.Context) (json.RawMessage, error) { return json.RawMessage(`"ok"`), nil })
	if err != nil || string(res) != `"ok"` {
		t.Fatalf("after Goexit: %s, %v", res, err)
	}
}

// coalescingServer registers READ (per-caller), PUBLIC_READ (Public) and
// WRITE; each reports its start on started and answers, once release is
// closed, with the principal it ran for.
type coalescingServer struct {
	*testServer
	runs    sync.Map // action → *atomic.Int32
	started chan string
	release chan struct{}
}

func startCoalescingServer(t *testing.T, opts ...socket.ServerOption) *coalescingServer {
	cs := &coalescingServer{started: make(chan string, 100), release: make(chan struct{})}
	handler := func(action string) socket.Handler {
		return socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
			n, _ := cs.runs.LoadOrStore(action, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
			cs.started <- action
			select {
			case <-cs.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return json.Marshal(map[string]string{"id": r.ResourceID, "for": r.Meta.Principal.Subject})
		})
	}
	cs.testServer = startServer(t, serverSpec{opts: opts, register: func(s *socket.Server) {
		must(t, s.Handle("READ", handler("READ"), socket.Read()))
		must(t, s.Handle("PUBLIC_READ", handler("PUBLIC_READ"), socket.Read(), socket.Public()))
		must(t, s.Handle("WRITE", handler("WRITE")))
	}})
	return cs
}

func (cs *coalescingServer) count(action string) int32 {
	n, ok := cs.runs.Load(action)
	if !ok {
		return 0
	}
	return n.(*atomic.Int32).Load()
}

// asGateway dials the server as a gateway would: a delegating key, one
// stream, and no coalescing in the client, so every request reaches the
// server.
func asGateway(t *testing.T, ts *testServer) *socket.Client {
	return dialServer(t, ts, socket.WithKey(gatewayKey), socket.WithoutClientCoalescing())
}

func forPrincipal(ctx context.Context, subject string) context.Context {
	return socket.ContextWithMeta(ctx, socket.Meta{APIVersion: "v1", Principal: socket.Principal{Subject: subject}})
}

type answerOf struct {
	ID  string `json:"id"`
	For string `json:"for"`
}

// request calls action with no body and sends the outcome on out.
func request(ctx context.Context, c *socket.Client, action, id string, out chan<- outcome) {
	res, err := c.Request(ctx, action, id, nil)
	out <- outcome{res: res, err: err}
}

func TestServerCoalescesAcrossStreams(t *testing.T) {
	t.Parallel()
	type call struct{ action, principal string }
	cases := []struct {
		name     string
		opts     []socket.ServerOption
		calls    []call // one per gateway (client)
		runs     int32  // handler runs wanted
		sameBody bool   // every caller gets the same answer
	}{
		{"two gateways, same read: one run", nil, []call{{"READ", "alice"}, {"READ", "alice"}, {"READ", "alice"}}, 1, true},
		{"per-caller read, different principals: never shared", nil, []call{{"READ", "alice"}, {"READ", "bob"}, {"READ", "alice"}}, 2, false},
		{"public read, different principals: shared", nil, []call{{"PUBLIC_READ", "alice"}, {"PUBLIC_READ", "bob"}}, 1, true},
		{"writes never coalesced", nil, []call{{"WRITE", "alice"}, {"WRITE", "alice"}}, 2, true},
		{"WithoutCoalescing", []socket.ServerOption{socket.WithoutCoalescing()}, []call{{"READ", "alice"}, {"READ", "alice"}}, 2, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			flights := &socket.Coalescer{}
			cs := startCoalescingServer(t, append([]socket.ServerOption{socket.WithCoalescer(flights)}, tc.opts...)...)
			ctx := testContext(t)
			action := tc.calls[0].action
			outs := make([]chan outcome, len(tc.calls))
			for i, c := range tc.calls {
				outs[i] = make(chan outcome, 1)
				go request(forPrincipal(ctx, c.principal), asGateway(t, cs.testServer), c.action, "7", outs[i])
				if i == 0 {
					recv(t, cs.started) // the first run is under way
				}
			}
			// Every request is at the server: waiting for a run, or running
			// (when the runtime does not coalesce it).
			for range tc.runs - 1 {
				recv(t, cs.started)
			}
			if tc.runs < int32(len(tc.calls)) {
				sockettest.WaitJoined(t, len(tc.calls), flights)
			}
			close(cs.release)
			var first answerOf
			for i, o := range outs {
				got := recv(t, o)
				if got.err != nil {
					t.Fatalf("call %d: %v", i, got.err)
				}
				var a answerOf
				must(t, json.Unmarshal(got.res, &a))
				if i == 0 {
					first = a
				}
				if a.ID != "7" || (!tc.sameBody && a.For != tc.calls[i].principal) || (tc.sameBody && a != first) {
					t.Fatalf("call %d (%+v) got %+v; first got %+v", i, tc.calls[i], a, first)
				}
			}
			if got := cs.count(action); got != tc.runs {
				t.Fatalf("%s ran %d times, want %d", action, got, tc.runs)
			}
			stats := describe(t, cs.testServer, action)
			if want := uint64(len(tc.calls)) - uint64(tc.runs); stats.GetCoalesced() != want || stats.GetCount() != uint64(tc.runs) {
				t.Fatalf("stats: count %d, coalesced %d; want %d and %d", stats.GetCount(), stats.GetCoalesced(), tc.runs, want)
			}
		})
	}
}

func TestClientCoalescesReads(t *testing.T) {
	t.Parallel()
	cs := startCoalescingServer(t)
	c := dialServer(t, cs.testServer, socket.WithKey(gatewayKey))
	ctx := testContext(t)
	// The catalogue (which actions are reads) comes with the first stream.
	if _, err := c.Describe(ctx); err != nil {
		t.Fatal(err)
	}
	if info, ok := c.Action("READ"); !ok || !info.Read || info.Public {
		t.Fatalf("READ described as %+v, %v", info, ok)
	}
	if info, _ := c.Action("PUBLIC_READ"); !info.Read || !info.Public {
		t.Fatalf("PUBLIC_READ described as %+v", info)
	}
	const n = 20
	outs := make([]chan outcome, n)
	for i := range n {
		// Half the calls come in a principal of their own: they share
		// among themselves, not with the others.
		who := "alice"
		if i%2 == 1 {
			who = "bob"
		}
		outs[i] = make(chan outcome, 1)
		go request(forPrincipal(ctx, who), c, "READ", "1", outs[i])
	}
	recv(t, cs.started)
	recv(t, cs.started)
	sockettest.WaitJoined(t, n, socket.ClientFlights(c))
	close(cs.release)
	for i, o := range outs {
		got := recv(t, o)
		var a answerOf
		if got.err != nil || json.Unmarshal(got.res, &a) != nil || a.For != map[bool]string{true: "alice", false: "bob"}[i%2 == 0] {
			t.Fatalf("call %d: %s, %v", i, got.res, got.err)
		}
	}
	if got := cs.count("READ"); got != 2 {
		t.Fatalf("READ ran %d times for two principals, want 2", got)
	}
	if got := c.Coalesced(); got != n-2 {
		t.Fatalf("Coalesced() = %d, want %d", got, n-2)
	}
	// Only two requests crossed the socket.
	if stats := describe(t, cs.testServer, "READ"); stats.GetCount()+stats.GetCoalesced() != 2 {
		t.Fatalf("the server saw %d requests, want 2", stats.GetCount()+stats.GetCoalesced())
	}
}

func TestClientWithoutCoalescing(t *testing.T) {
	t.Parallel()
	cs := startCoalescingServer(t, socket.WithoutCoalescing())
	c := dialServer(t, cs.testServer, socket.WithKey(gatewayKey), socket.WithoutClientCoalescing())
	ctx := forPrincipal(testContext(t), "alice")
	outs := make(chan outcome, 2)
	go request(ctx, c, "READ", "1", outs)
	go request(ctx, c, "READ", "1", outs)
	recv(t, cs.started)
	recv(t, cs.started) // both run: neither side coalesced them
	close(cs.release)
	for range 2 {
		if got := recv(t, outs); got.err != nil {
			t.Fatal(got.err)
		}
	}
	if c.Coalesced() != 0 {
		t.Fatalf("Coalesced() = %d with coalescing off", c.Coalesced())
	}
}

// TestInlineCoalescer: the leader runs the work on its own goroutine; its
// giving up does not cancel the work for a waiting follower, and the work
// is cancelled once nobody waits.
func TestInlineCoalescer(t *testing.T) {
	t.Parallel()
	c := &socket.Coalescer{Inline: true}
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
