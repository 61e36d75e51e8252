package socket_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// outcome is what one Do call returned.
type outcome struct {
	res json.RawMessage
	err error
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
			flights := &coalesce.Group{}
			cs := startCoalescingServer(t, append([]socket.ServerOption{socket.WithFlights(flights)}, tc.opts...)...)
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
	if got := socket.ClientCoalesced(c); got != n-2 {
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
	if socket.ClientCoalesced(c) != 0 {
		t.Fatalf("Coalesced() = %d with coalescing off", socket.ClientCoalesced(c))
	}
}
