package caller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// instanceCounters counts what one instance ran.
type instanceCounters struct {
	reads, writes atomic.Int64
	writeStarted  chan string // receives the id of each write that starts

	mu  sync.Mutex    // guards ran
	ran chan struct{} // closed (and replaced) after each count
}

// count adds one to n's counter c and wakes whoever waits in awaitCount.
func (n *instanceCounters) count(c *atomic.Int64) {
	c.Add(1)
	n.mu.Lock()
	close(n.ran)
	n.ran = make(chan struct{})
	n.mu.Unlock()
}

func (n *instanceCounters) signal() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ran
}

// awaitCount waits until done holds, looking again after each request
// that a or b (nil for none) ran.
func awaitCount(t *testing.T, done func() bool, a, b *instanceCounters) {
	t.Helper()
	ctx := sockettest.Context(t)
	for {
		var ranB <-chan struct{}
		ranA := a.signal()
		if b != nil {
			ranB = b.signal()
		}
		if done() {
			return
		}
		select {
		case <-ranA:
		case <-ranB:
		case <-ctx.Done():
			t.Fatal("the instances never ran the requests awaited")
		}
	}
}

// countingInstance starts an instance with READ (waits delay_ms) and WRITE
// (waits until release is closed, or delay_ms), both counted.
func countingInstance(t *testing.T, addr string, release <-chan struct{}) (*sockettest.Server, *instanceCounters) {
	n := &instanceCounters{writeStarted: make(chan string, 1000), ran: make(chan struct{})}
	ts := sockettest.StartServer(t, sockettest.Spec{Addr: addr, Register: func(s *socket.Server) {
		wait := func(ctx context.Context, r *socket.Request) error {
			var in sockettest.EchoIn
			if err := socket.DecodeBody(r.Body, &in); err != nil {
				return err
			}
			if in.Delay == 0 {
				return nil
			}
			select {
			case <-time.After(time.Duration(in.Delay) * time.Millisecond):
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		}
		must(t, s.Handle("READ", socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
			n.count(&n.reads)
			return json.RawMessage(`"r` + r.ResourceID + `"`), wait(ctx, r)
		}), socket.Read()))
		must(t, s.Handle("WRITE", socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
			n.count(&n.writes)
			n.writeStarted <- r.ResourceID
			return json.RawMessage(`"w` + r.ResourceID + `"`), wait(ctx, r)
		})))
	}})
	return ts, n
}

// awaitReady waits until the client has a ready stream to every address.
func awaitReady(t *testing.T, c *caller.Client, n int) {
	t.Helper()
	ctx := sockettest.Context(t)
	for {
		ready := 0
		for _, s := range caller.Instances(c) {
			if s.State == connectivity.Ready {
				ready++
			}
		}
		if ready == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("instances never all ready: %+v", caller.Instances(c))
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestTwoInstancesShareTrafficAndSurviveOneKilled(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	a, na := countingInstance(t, "", release)
	b, nb := countingInstance(t, "", release)
	c := sockettest.Dial(t, "static:///"+a.Addr+","+b.Addr)
	awaitReady(t, c, 2)
	ctx := sockettest.Context(t)

	// Both instances get traffic.
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Request(ctx, "READ", fmt.Sprint(i), []byte(`{"delay_ms":2}`)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if na.reads.Load() < 20 || nb.reads.Load() < 20 {
		t.Fatalf("reads per instance %d and %d; want both to take a fair share", na.reads.Load(), nb.reads.Load())
	}

	// Writes and reads in flight on both; then a is killed.
	const writes = 20
	type outcome struct {
		id  string
		err error
	}
	writeDone := make(chan outcome, writes)
	for i := range writes {
		go func() {
			id := fmt.Sprint("w", i)
			_, err := c.Request(ctx, "WRITE", id, []byte(`{"delay_ms":60000}`))
			writeDone <- outcome{id, err}
		}()
	}
	startedOn := map[string]string{}
	for len(startedOn) < writes {
		select {
		case id := <-na.writeStarted:
			startedOn[id] = "a"
		case id := <-nb.writeStarted:
			startedOn[id] = "b"
		}
	}
	readsBefore := na.reads.Load() + nb.reads.Load()
	readDone := make(chan error, 40)
	for i := range 40 {
		go func() {
			_, err := c.Request(ctx, "READ", fmt.Sprint(i), []byte(`{"delay_ms":60000}`))
			readDone <- err
		}()
	}
	awaitCount(t, func() bool { return na.reads.Load()+nb.reads.Load() >= readsBefore+40 }, na, nb)
	a.Stop()
	close(release)

	for range 40 {
		if err := <-readDone; err != nil {
			t.Errorf("read in flight when an instance died: %v", err)
		}
	}
	failed := 0
	for range writes {
		o := <-writeDone
		switch {
		case startedOn[o.id] == "a":
			sockettest.WantCode(t, o.err, socket.CodeUnavailable)
			failed++
		case o.err != nil:
			t.Errorf("write %s on the live instance failed: %v", o.id, o.err)
		}
	}
	if failed == 0 {
		t.Fatal("no write was in flight on the killed instance; the test proves nothing")
	}
	if got := na.writes.Load() + nb.writes.Load(); got != writes {
		t.Fatalf("writes ran %d times for %d requests: a write was sent twice", got, writes)
	}
	// Reads carry on on the survivor.
	for i := range 20 {
		if _, err := c.Request(ctx, "READ", fmt.Sprint(i), nil); err != nil {
			t.Fatalf("read after the kill: %v", err)
		}
	}
}

func TestDrainLosesNothing(t *testing.T) {
	t.Parallel()
	a, na := countingInstance(t, "", nil)
	b, nb := countingInstance(t, "", nil)
	c := sockettest.Dial(t, "static:///"+a.Addr+","+b.Addr)
	awaitReady(t, c, 2)
	ctx := sockettest.Context(t)

	// A steady stream of writes and reads while a drains.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				action := []string{"WRITE", "READ"}[i%2]
				sent.Add(1)
				if _, err := c.Request(ctx, action, fmt.Sprint(w, "-", i), []byte(`{"delay_ms":20}`)); err != nil {
					failed.Add(1)
					t.Errorf("%s during drain: %v", action, err)
				}
			}
		}()
	}
	// Let traffic reach a, then drain it with requests in flight.
	awaitCount(t, func() bool { return na.writes.Load() >= 10 }, na, nil)
	a.Shutdown()
	before := nb.reads.Load() + nb.writes.Load()
	awaitCount(t, func() bool { return nb.reads.Load()+nb.writes.Load() >= before+50 }, nb, nil)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during a graceful drain", failed.Load(), sent.Load())
	}
	if ran := na.reads.Load() + na.writes.Load() + nb.reads.Load() + nb.writes.Load(); ran != sent.Load() {
		t.Fatalf("%d requests sent, %d ran: drained requests were lost or run twice", sent.Load(), ran)
	}
}

func TestServiceDownFailsFastThenComesBack(t *testing.T) {
	t.Parallel()
	a, _ := countingInstance(t, "", nil)
	c := sockettest.Dial(t, a.Addr)
	ctx := sockettest.Context(t)
	if _, err := c.Request(ctx, "READ", "1", nil); err != nil {
		t.Fatal(err)
	}
	addr := a.Addr
	a.Stop()
	a.Shutdown()
	// The client notices the loss...
	for changed := caller.Changed(c); c.State() == connectivity.Ready; changed = caller.Changed(c) {
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("the client never noticed the loss of its only instance")
		}
	}
	// ...and requests made while the only instance is down fail at once,
	// long before their deadline, saying why and when to try again.
	const callers = 200
	type outcome struct {
		err  error
		took time.Duration
	}
	outcomes := make(chan outcome, callers)
	for i := range callers {
		go func() {
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			_, err := c.Request(rctx, "WRITE", fmt.Sprint(i), nil)
			outcomes <- outcome{err, time.Since(start)}
		}()
	}
	for range callers {
		o := <-outcomes
		e := sockettest.WantCode(t, o.err, socket.CodeUnavailable)
		if o.took > time.Second {
			t.Errorf("a request with a 10s deadline took %v to fail", o.took)
		}
		if e.Details[socket.DetailReason] != socket.ReasonNoReadyInstance || e.Message != "service test has no ready instance" {
			t.Fatalf("error %q %v; want reason %s", e.Message, e.Details, socket.ReasonNoReadyInstance)
		}
		ms, ok := e.Details[socket.DetailRetryAfterMs].(int64)
		if !ok || ms < 100 || ms > 200 {
			t.Fatalf("retry_after_ms = %v (%T); want 100..200 (the backoff cap)", e.Details[socket.DetailRetryAfterMs], e.Details[socket.DetailRetryAfterMs])
		}
	}
	// Once the instance is back, requests succeed.
	_, nb := countingInstance(t, addr, nil)
	awaitReady(t, c, 1)
	if _, err := c.Request(ctx, "READ", "2", nil); err != nil {
		t.Fatalf("request after the restart: %v", err)
	}
	if nb.reads.Load() != 1 || nb.writes.Load() != 0 {
		t.Fatalf("after restart: %d reads, %d writes on the new instance", nb.reads.Load(), nb.writes.Load())
	}
}

func TestFirstConnectIsWaitedFor(t *testing.T) {
	t.Parallel()
	a, na := countingInstance(t, "", nil)
	// A ready wait far below the time a first connection may take on a
	// busy machine: the first attempt is waited for all the same.
	c := sockettest.Dial(t, a.Addr, caller.WithReadyWait(0))
	if _, err := c.Request(sockettest.Context(t), "READ", "1", nil); err != nil {
		t.Fatalf("request during the first connection attempt: %v", err)
	}
	if na.reads.Load() != 1 {
		t.Fatal("the request did not reach the instance")
	}
}

func TestWritesAreNotResentWhenAStreamBreaks(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	a, na := countingInstance(t, "", release)
	c := sockettest.Dial(t, a.Addr)
	ctx := sockettest.Context(t)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, "WRITE", "1", []byte(`{"delay_ms":60000}`))
		errc <- err
	}()
	<-na.writeStarted
	a.Stop()
	e := sockettest.WantCode(t, <-errc, socket.CodeUnavailable)
	if !strings.Contains(e.Message, "broke") || e.Details[socket.DetailReason] != socket.ReasonOutcomeUnknown {
		t.Fatalf("error %q %v does not say the stream broke after sending", e.Message, e.Details)
	}
	if na.writes.Load() != 1 {
		t.Fatalf("write ran %d times", na.writes.Load())
	}
}

func TestDNSTarget(t *testing.T) {
	t.Parallel()
	a, na := countingInstance(t, "", nil)
	_, port, _ := net.SplitHostPort(a.Addr)
	c := sockettest.Dial(t, "dns:///127.0.0.1:"+port)
	if _, err := c.Request(sockettest.Context(t), "READ", "1", nil); err != nil {
		t.Fatal(err)
	}
	if na.reads.Load() != 1 {
		t.Fatal("the request did not reach the instance")
	}
	if _, err := caller.Dial("nope:///x"); err == nil {
		t.Fatal("Dial accepted an unknown scheme")
	}
}

func TestClosedClientFailsFast(t *testing.T) {
	t.Parallel()
	a, _ := countingInstance(t, "", nil)
	c, err := caller.Dial(a.Addr, caller.WithKey(sockettest.TestKey))
	must(t, err)
	must(t, c.Close())
	_, err = c.Request(sockettest.Context(t), "READ", "1", nil)
	sockettest.WantCode(t, err, socket.CodeUnavailable)
	if c.State() != connectivity.Shutdown {
		t.Fatalf("state after Close = %v", c.State())
	}
}

// An idempotent write whose stream broke after it was sent may have run:
// when no instance is left to send it again, the answer still says the
// outcome is unknown, never "no ready instance", which would tell the
// caller nothing was sent.
func TestLostIdempotentWriteWithNoInstanceLeftIsOutcomeUnknown(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	a := sockettest.StartServer(t, sockettest.Spec{Register: func(s *socket.Server) {
		must(t, s.Handle("SET", socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
			started <- struct{}{}
			<-ctx.Done() // the instance dies first
			return nil, ctx.Err()
		}), socket.Idempotent()))
	}})
	c := sockettest.Dial(t, a.Addr)
	ctx := sockettest.Context(t)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, "SET", "1", []byte(`{}`))
		errc <- err
	}()
	<-started
	a.Stop()
	e := sockettest.WantCode(t, <-errc, socket.CodeUnavailable)
	if e.Details[socket.DetailReason] != socket.ReasonOutcomeUnknown {
		t.Fatalf("error %q %v: want reason %s", e.Message, e.Details, socket.ReasonOutcomeUnknown)
	}
}

func TestThousandConcurrentRequestsOnOneStream(t *testing.T) {
	t.Parallel()
	for _, bufconn := range []bool{true, false} {
		t.Run(map[bool]string{true: "bufconn", false: "tcp"}[bufconn], func(t *testing.T) {
			t.Parallel()
			ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: bufconn})
			c := sockettest.DialServer(t, ts)
			ctx := sockettest.Context(t)
			const n = 1000
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				finished []int
				failures []string
			)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Earlier requests take longer, so answers come back
					// out of order.
					in := sockettest.EchoIn{Text: fmt.Sprint("msg-", i), Delay: (n - i) / 40}
					out, err := caller.Call[sockettest.EchoOut](ctx, c, "ECHO", fmt.Sprint(i), in)
					mu.Lock()
					defer mu.Unlock()
					if err != nil || out.ID != fmt.Sprint(i) || out.Text != in.Text {
						failures = append(failures, fmt.Sprintf("request %d: %+v, %v", i, out, err))
					}
					finished = append(finished, i)
				}()
			}
			wg.Wait()
			if len(failures) > 0 {
				t.Fatalf("%d of %d failed, e.g. %s", len(failures), n, failures[0])
			}
			inversions := 0
			for i := 1; i < len(finished); i++ {
				if finished[i] < finished[i-1] {
					inversions++
				}
			}
			if inversions == 0 {
				t.Fatal("answers came back strictly in order; expected out-of-order completion")
			}
			if got := caller.Instances(c); len(got) != 1 {
				t.Fatalf("instances = %+v, want one stream", got)
			}
		})
	}
}
