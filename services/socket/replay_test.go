package socket_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

type payIn struct {
	Amount int `json:"amount"`
}

type payOut struct {
	Charge string `json:"charge"`
}

// replayServer serves PAY, which charges once per idempotency key and
// replays the stored outcome for the same key, and SHARED, a read that
// marks its answer as a replay (which coalesced reads must ignore).
func replayServer(t *testing.T) (*sockettest.Server, *sync.Map) {
	var charges sync.Map // idempotency key → charge id
	ts := sockettest.StartServer(t, sockettest.Spec{Register: func(s *socket.Server) {
		must(t, s.Handle("PAY", socket.Typed(func(ctx context.Context, id string, in payIn) (payOut, error) {
			key := socket.MetaFrom(ctx).IdempotencyKey
			if prev, ok := charges.Load(key); ok {
				socket.MarkReplayed(ctx)
				return payOut{Charge: prev.(string)}, nil
			}
			charges.Store(key, "ch-"+key)
			return payOut{Charge: "ch-" + key}, nil
		})))
		must(t, s.Handle("SHARED", socket.HandlerFunc(func(ctx context.Context, _ *socket.Request) (json.RawMessage, error) {
			socket.MarkReplayed(ctx)
			return json.RawMessage(`"shared"`), nil
		}), socket.Read()))
	}})
	return ts, &charges
}

func TestReplayedFlagEndToEnd(t *testing.T) {
	t.Parallel()
	ts, _ := replayServer(t)
	c := sockettest.DialServer(t, ts)
	ctx := caller.ContextWithMeta(sockettest.Context(t), socket.Meta{IdempotencyKey: "k1"})

	first, err := c.Do(ctx, "PAY", "order-1", payIn{Amount: 100})
	must(t, err)
	again, err := c.Do(ctx, "PAY", "order-1", payIn{Amount: 100})
	must(t, err)
	if first.Replayed || !again.Replayed {
		t.Fatalf("replayed: first %v, second %v; want false, true", first.Replayed, again.Replayed)
	}
	if string(first.Result) != string(again.Result) {
		t.Fatalf("results differ: %s and %s", first.Result, again.Result)
	}
	// Request keeps its signature and answer.
	res, err := c.Request(ctx, "PAY", "order-1", payIn{Amount: 100})
	if err != nil || string(res) != string(first.Result) {
		t.Fatalf("Request = %s, %v", res, err)
	}
	other, err := c.Do(caller.ContextWithMeta(sockettest.Context(t), socket.Meta{IdempotencyKey: "k2"}), "PAY", "order-2", nil)
	if err != nil || other.Replayed {
		t.Fatalf("a new key: %+v, %v", other, err)
	}

	// The unary Call carries the flag too.
	stub := sockettest.RawConn(t, ts)
	call := func() *socketv1.Response {
		r, err := stub.Call(sockettest.WithKey(sockettest.Context(t), sockettest.TestKey), &socketv1.CallRequest{Request: &socketv1.Request{
			Action: "PAY", ResourceId: "order-3", Meta: &socketv1.Meta{IdempotencyKey: "k3"},
		}})
		must(t, err)
		if !r.GetResponse().GetOk() {
			t.Fatalf("Call failed: %v", r.GetResponse().GetError())
		}
		return r.GetResponse()
	}
	if r := call(); r.GetReplayed() {
		t.Fatal("first unary call marked replayed")
	}
	if r := call(); !r.GetReplayed() {
		t.Fatal("second unary call not marked replayed")
	}
}

func TestCoalescedReadNeverMarksReplayed(t *testing.T) {
	t.Parallel()
	ts, _ := replayServer(t)
	c := sockettest.DialServer(t, ts, caller.WithoutCoalescing())
	r, err := c.Do(sockettest.Context(t), "SHARED", "1", nil)
	must(t, err)
	if r.Replayed || string(r.Result) != `"shared"` {
		t.Fatalf("coalesced read: %+v", r)
	}
	// Outside a request, MarkReplayed does nothing.
	socket.MarkReplayed(context.Background())
	socket.MarkReplayed(caller.ContextWithMeta(context.Background(), socket.Meta{}))
}
