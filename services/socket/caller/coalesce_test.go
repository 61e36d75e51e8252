package caller_test

import (
	"encoding/json"
	"testing"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

func TestClientCoalescesReads(t *testing.T) {
	t.Parallel()
	cs := sockettest.StartGated(t)
	c := sockettest.DialServer(t, cs.Server, caller.WithKey(sockettest.GatewayKey))
	ctx := sockettest.Context(t)
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
	outs := make([]chan sockettest.Outcome, n)
	for i := range n {
		// Half the calls come in a principal of their own: they share
		// among themselves, not with the others.
		who := "alice"
		if i%2 == 1 {
			who = "bob"
		}
		outs[i] = make(chan sockettest.Outcome, 1)
		go sockettest.Request(sockettest.WithPrincipal(ctx, "v1", who), c, "READ", "1", outs[i])
	}
	sockettest.Recv(t, cs.Started)
	sockettest.Recv(t, cs.Started)
	sockettest.WaitJoined(t, n, caller.Flights(c))
	close(cs.Release)
	for i, o := range outs {
		got := sockettest.Recv(t, o)
		var a sockettest.Answer
		if got.Err != nil || json.Unmarshal(got.Result, &a) != nil || a.For != map[bool]string{true: "alice", false: "bob"}[i%2 == 0] {
			t.Fatalf("call %d: %s, %v", i, got.Result, got.Err)
		}
	}
	if got := cs.Runs("READ"); got != 2 {
		t.Fatalf("READ ran %d times for two principals, want 2", got)
	}
	if got := caller.Coalesced(c); got != n-2 {
		t.Fatalf("Coalesced() = %d, want %d", got, n-2)
	}
	// Only two requests crossed the socket.
	if stats := cs.Stats(t, "READ"); stats.GetCount()+stats.GetCoalesced() != 2 {
		t.Fatalf("the server saw %d requests, want 2", stats.GetCount()+stats.GetCoalesced())
	}
}

func TestClientWithoutCoalescing(t *testing.T) {
	t.Parallel()
	cs := sockettest.StartGated(t, socket.WithoutCoalescing())
	c := sockettest.DialServer(t, cs.Server, caller.WithKey(sockettest.GatewayKey), caller.WithoutCoalescing())
	ctx := sockettest.WithPrincipal(sockettest.Context(t), "v1", "alice")
	outs := make(chan sockettest.Outcome, 2)
	go sockettest.Request(ctx, c, "READ", "1", outs)
	go sockettest.Request(ctx, c, "READ", "1", outs)
	sockettest.Recv(t, cs.Started)
	sockettest.Recv(t, cs.Started) // both run: neither side coalesced them
	close(cs.Release)
	for range 2 {
		if got := sockettest.Recv(t, outs); got.Err != nil {
			t.Fatal(got.Err)
		}
	}
	if caller.Coalesced(c) != 0 {
		t.Fatalf("Coalesced() = %d with coalescing off", caller.Coalesced(c))
	}
}
