package natsserve_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/internal/natswire"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// ledger is a test service whose handlers each test sets: READ (a read),
// ADD (a write sent once) and PUT (a write declared idempotent).
type ledger struct {
	read func(ctx context.Context, id string) error
	add  func(ctx context.Context, id string) error
	runs sync.Map // action/id → *atomic.Int64, runs of each
}

// ran counts a run of action on id and returns how many there were.
func (l *ledger) ran(action, id string) int64 {
	n, _ := l.runs.LoadOrStore(action+"/"+id, new(atomic.Int64))
	return n.(*atomic.Int64).Add(1)
}

// runsOf is how many times action ran on id.
func (l *ledger) runsOf(action, id string) int64 {
	n, ok := l.runs.Load(action + "/" + id)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// serve serves the ledger as service name over nc until the test ends.
func (l *ledger) serve(t *testing.T, name string, nc *nats.Conn) {
	t.Helper()
	srv, err := socket.NewServer(socket.Config{Name: name, Version: "1"}, socket.WithKeys(sockettest.Keys(t)), socket.WithDrainTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	handler := func(action string, f *func(context.Context, string) error) socket.Handler {
		return socket.HandlerFunc(func(ctx context.Context, req *socket.Request) (json.RawMessage, error) {
			l.ran(action, req.ResourceID)
			if *f != nil {
				if err := (*f)(ctx, req.ResourceID); err != nil {
					return nil, err
				}
			}
			return json.RawMessage(`{"ok":true}`), nil
		})
	}
	must(t, srv.Handle("READ", handler("READ", &l.read), socket.Read()))
	must(t, srv.Handle("ADD", handler("ADD", &l.add)))
	serve(t, srv, nc, nil)
	natstest.WaitService(t, nc, name, 1, 2)
}

// swallow joins the service's queue group for action as an instance
// that takes one request and dies with it (it never answers, and leaves
// the group): the request's answer is lost. The returned channel gets the
// request's resource id.
func swallow(t *testing.T, nc *nats.Conn, service, action string) <-chan string {
	t.Helper()
	got := make(chan string, 1)
	var sub *nats.Subscription
	var once sync.Once
	sub, err := nc.QueueSubscribe(natswire.Subject(service, action), natswire.QueueGroup, func(m *nats.Msg) {
		once.Do(func() {
			_ = sub.Unsubscribe()
			got <- requestID(m.Data)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return got
}

// dialLedger dials the ledger service name over nc and learns its
// actions.
func dialLedger(t *testing.T, name string, nc *nats.Conn) *caller.Client {
	t.Helper()
	c := dialNamed(t, name, nc, sockettest.TestKey)
	if _, err := c.Describe(sockettest.Context(t)); err != nil {
		t.Fatal(err)
	}
	return c
}

// withDyingInstance serves the ledger on an embedded server, dials it, and
// adds an instance that dies with the first request for action it takes.
func withDyingInstance(t *testing.T, action string) (*ledger, *caller.Client, <-chan string) {
	t.Helper()
	url := natstest.Embedded(t)
	l := &ledger{}
	l.serve(t, "ledger", natstest.Connect(t, url))
	c := dialLedger(t, "ledger", natstest.Connect(t, url))
	return l, c, swallow(t, natstest.Connect(t, url), "ledger", action)
}

// A read whose copy went to an instance that died with it is sent again
// (hedged) after a quarter of its deadline and answered by another
// instance: it succeeds within its deadline.
func TestReadWithLostAnswerIsHedged(t *testing.T) {
	l, c, swallowed := withDyingInstance(t, "READ")
	const deadline = 800 * time.Millisecond
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("100 reads and the dying instance took none")
		}
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		id := fmt.Sprintf("r%d", i)
		start := time.Now()
		_, err := c.Request(ctx, "READ", id, nil)
		took := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("read %d: %v after %v", i, err, took)
		}
		select {
		case lost := <-swallowed:
			if lost != id {
				t.Fatalf("the dying instance took %q; the read in flight was %q", lost, id)
			}
			if l.runsOf("READ", id) != 1 {
				t.Errorf("the live instance ran the read %d times; want 1 (the hedged copy)", l.runsOf("READ", id))
			}
			if took < deadline/4 {
				t.Errorf("the hedged read took %v: sent again before a quarter of its deadline", took)
			}
			t.Logf("the read whose answer was lost was answered after %v (deadline %v)", took, deadline)
			return
		default:
		}
	}
}

// A plain write whose answer is lost is never sent again: its deadline
// ends it with DEADLINE_EXCEEDED, outcome unknown, and no instance ran it
// a second time.
func TestWriteWithLostAnswerIsNotResent(t *testing.T) {
	l, c, swallowed := withDyingInstance(t, "ADD")
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("100 writes and the dying instance took none")
		}
		id := fmt.Sprintf("w%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := c.Request(ctx, "ADD", id, nil)
		cancel()
		select {
		case lost := <-swallowed:
			if lost != id {
				t.Fatalf("the dying instance took %q; the write in flight was %q", lost, id)
			}
			e := sockettest.WantCode(t, err, status.CodeDeadlineExceeded)
			if e.Reason() != socket.ReasonOutcomeUnknown {
				t.Errorf("details %v; want reason %s", e.Details, socket.ReasonOutcomeUnknown)
			}
			if n := l.runsOf("ADD", id); n != 0 {
				t.Errorf("the write whose answer was lost ran %d times on the live instance; want 0 (never resent)", n)
			}
			return
		default:
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
	}
}

// The NATS server restarts while requests wait for their answers: a plain
// write in flight fails at once with UNAVAILABLE, outcome unknown (not at
// its deadline); a request sent while the server is down fails at once
// with UNAVAILABLE and a retry hint, unsent; a read in flight is sent
// again once the connection is back and answered; and requests are
// answered again after the restart.
func TestNATSRestartFailsInFlightAsRetryable(t *testing.T) {
	ns := natstest.Restartable(t)
	l := &ledger{}
	arrived := make(chan string, 2)
	released := make(chan struct{})
	var held sync.Map // ids held once
	hold := func(ctx context.Context, id string) error {
		if _, again := held.LoadOrStore(id, true); again || (id != "w1" && id != "r1") {
			return nil
		}
		arrived <- id
		// Until the server is down: the answer then has no way back, and
		// the runtime no longer joins a copy sent again to this run.
		select {
		case <-released:
		case <-ctx.Done():
		}
		return nil
	}
	l.add, l.read = hold, hold
	l.serve(t, "ledger", natstest.Reconnecting(t, ns.URL))
	c := dialLedger(t, "ledger", natstest.Reconnecting(t, ns.URL))

	type outcome struct {
		err  error
		took time.Duration
	}
	call := func(action, id string) <-chan outcome {
		out := make(chan outcome, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			_, err := c.Request(ctx, action, id, nil)
			out <- outcome{err, time.Since(start)}
		}()
		return out
	}
	write, read := call("ADD", "w1"), call("READ", "r1")
	for range 2 {
		sockettest.Recv(t, arrived)
	}
	ns.Stop()
	close(released)
	w := sockettest.Recv(t, write)
	e := sockettest.WantCode(t, w.err, status.CodeUnavailable)
	if e.Reason() != socket.ReasonOutcomeUnknown || w.took > 5*time.Second {
		t.Errorf("the write in flight: %v (details %v) after %v; want UNAVAILABLE outcome_unknown at once", e, e.Details, w.took)
	}
	if !errors.Is(w.err, &status.Error{Code: status.CodeUnavailable}) {
		t.Errorf("the write's error %v is not UNAVAILABLE", w.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	start := time.Now()
	_, err := c.Request(ctx, "ADD", "w2", nil)
	cancel()
	e = sockettest.WantCode(t, err, status.CodeUnavailable)
	if e.Reason() != socket.ReasonNoReadyInstance || e.Details[socket.DetailRetryAfterMs] == nil || time.Since(start) > time.Second {
		t.Errorf("a write while NATS is down: %v (details %v) after %v; want UNAVAILABLE no_ready_instance with a retry hint, at once", e, e.Details, time.Since(start))
	}

	ns.Start(t)
	back := time.Now()
	r := sockettest.Recv(t, read)
	if r.err != nil {
		t.Errorf("the read in flight across the restart: %v; want it sent again and answered", r.err)
	}
	if n := l.runsOf("ADD", "w2"); n != 0 {
		t.Errorf("the write refused while NATS was down ran %d times", n)
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		id := "w3-" + time.Since(back).String()
		_, err := c.Request(ctx, "ADD", id, nil)
		cancel()
		if err == nil {
			break
		}
		if time.Since(back) > 20*time.Second {
			t.Fatalf("no write answered 20s after the restart: %v", err)
		}
		<-time.After(20 * time.Millisecond)
	}
	t.Logf("first write answered %v after the restart", time.Since(back).Round(time.Millisecond))
}

// requestID is the resource id of an encoded request frame, "" when it
// is not one.
func requestID(data []byte) string {
	var r socketv1.Request
	if proto.Unmarshal(data, &r) != nil {
		return ""
	}
	return r.GetResourceId()
}
