package sockettest

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// Gated is a test server whose actions wait for the test: READ (a
// per-caller read), PUBLIC_READ (a Public read) and WRITE each report
// their start on Started, then answer, once Release is closed, with the
// id and the principal they ran for ({"id": …, "for": subject}). Tests of
// coalescing count the runs.
type Gated struct {
	*Server
	Started chan string   // receives the action of each run that starts
	Release chan struct{} // closing it lets every run answer
	runs    sync.Map      // action → *atomic.Int32
}

// StartGated starts a Gated server with opts, stopped at cleanup.
func StartGated(t testing.TB, opts ...socket.ServerOption) *Gated {
	t.Helper()
	g := &Gated{Started: make(chan string, 100), Release: make(chan struct{})}
	g.Server = StartServer(t, Spec{Opts: opts, Register: func(s *socket.Server) {
		must(t, s.Handle("READ", g.handler("READ"), socket.Read()))
		must(t, s.Handle("PUBLIC_READ", g.handler("PUBLIC_READ"), socket.Read(), socket.Public()))
		must(t, s.Handle("WRITE", g.handler("WRITE")))
	}})
	return g
}

// handler counts a run of action, reports it and waits for Release.
func (g *Gated) handler(action string) socket.Handler {
	return socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
		n, _ := g.runs.LoadOrStore(action, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		g.Started <- action
		select {
		case <-g.Release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return json.Marshal(map[string]string{"id": r.ResourceID, "for": r.Meta.Principal.Subject})
	})
}

// Runs counts the runs of action so far.
func (g *Gated) Runs(action string) int32 {
	n, ok := g.runs.Load(action)
	if !ok {
		return 0
	}
	return n.(*atomic.Int32).Load()
}

// Recv returns the next value from c, failing the test when none comes
// within 20 seconds.
func Recv[T any](t testing.TB, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(deadline):
		t.Fatal("no value within the test deadline")
		panic("unreachable")
	}
}

// Answer is what a Gated action answers.
type Answer struct {
	ID  string `json:"id"`
	For string `json:"for"` // the principal's subject
}

// Outcome is what one request returned.
type Outcome struct {
	Result json.RawMessage
	Err    error
}

// Request calls action with no body and sends the outcome on out, for
// tests that start requests in goroutines.
func Request(ctx context.Context, c *caller.Client, action, id string, out chan<- Outcome) {
	res, err := c.Request(ctx, action, id, nil)
	out <- Outcome{Result: res, Err: err}
}
