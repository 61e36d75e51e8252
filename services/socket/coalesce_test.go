package socket_test

import (
	"encoding/json"
	"testing"

	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// asGateway dials the server as a gateway would: a delegating key, one
// stream, and no coalescing in the client, so every request reaches the
// server.
func asGateway(t *testing.T, ts *sockettest.Server) *caller.Client {
	return sockettest.DialServer(t, ts, caller.WithKey(sockettest.GatewayKey), caller.WithoutCoalescing())
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
			cs := sockettest.StartGated(t, append([]socket.ServerOption{socket.WithFlights(flights)}, tc.opts...)...)
			ctx := sockettest.Context(t)
			action := tc.calls[0].action
			outs := make([]chan sockettest.Outcome, len(tc.calls))
			for i, c := range tc.calls {
				outs[i] = make(chan sockettest.Outcome, 1)
				go sockettest.Request(sockettest.WithPrincipal(ctx, "v1", c.principal), asGateway(t, cs.Server), c.action, "7", outs[i])
				if i == 0 {
					sockettest.Recv(t, cs.Started) // the first run is under way
				}
			}
			// Every request is at the server: waiting for a run, or running
			// (when the runtime does not coalesce it).
			for range tc.runs - 1 {
				sockettest.Recv(t, cs.Started)
			}
			if tc.runs < int32(len(tc.calls)) {
				sockettest.WaitJoined(t, len(tc.calls), flights)
			}
			close(cs.Release)
			var first sockettest.Answer
			for i, o := range outs {
				got := sockettest.Recv(t, o)
				if got.Err != nil {
					t.Fatalf("call %d: %v", i, got.Err)
				}
				var a sockettest.Answer
				must(t, json.Unmarshal(got.Result, &a))
				if i == 0 {
					first = a
				}
				if a.ID != "7" || (!tc.sameBody && a.For != tc.calls[i].principal) || (tc.sameBody && a != first) {
					t.Fatalf("call %d (%+v) got %+v; first got %+v", i, tc.calls[i], a, first)
				}
			}
			if got := cs.Runs(action); got != tc.runs {
				t.Fatalf("%s ran %d times, want %d", action, got, tc.runs)
			}
			stats := cs.Stats(t, action)
			if want := uint64(len(tc.calls)) - uint64(tc.runs); stats.GetCoalesced() != want || stats.GetCount() != uint64(tc.runs) {
				t.Fatalf("stats: count %d, coalesced %d; want %d and %d", stats.GetCount(), stats.GetCoalesced(), tc.runs, want)
			}
		})
	}
}
