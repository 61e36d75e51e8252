package socket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/promtest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// A key limited to some actions may not subscribe: events carry whole
// objects, whatever action changed them.
func TestEventsActionScopedKeyMayNotSubscribe(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true})
	scoped := sockettest.DialServer(t, ts, caller.WithKey(sockettest.ReaderKey))
	awaitReady(t, scoped)
	_, err := scoped.Subscribe(sockettest.Context(t), "*", func(caller.Event) {})
	if status.CodeOf(err) != socket.CodePermissionDenied {
		t.Fatalf("Subscribe with an action-scoped key: %v, want PERMISSION_DENIED", err)
	}
	// An unscoped key still subscribes.
	plain := sockettest.DialServer(t, ts)
	awaitReady(t, plain)
	events, _ := collect(t, plain, "items/1")
	must(t, ts.Publish("items/1", nil, socket.Visibility{Public: true}))
	if e := next(t, events); e.Topic != "items/1" {
		t.Fatalf("event %+v", e)
	}
}

// When a stream's event queue overflows, the service tells the stream as
// soon as the queue has room again, even if the dropped events were the
// last of their topics.
func TestEventsTailDropIsSignalled(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true})
	slow := rawSubscriber(t, sockettest.Context(t), ts, "items/*")
	// Each event on a topic of its own: no later event shows a seq jump.
	// Far more than the window and the queue hold.
	data := json.RawMessage(`"` + strings.Repeat("x", 1024) + `"`)
	const n = 1000
	for i := range n {
		must(t, ts.Publish(fmt.Sprintf("items/%d", i), data, socket.Visibility{}))
	}
	got := 0
	for {
		r, err := slow.Recv()
		if err != nil {
			t.Fatalf("after %d events, no gap marker: %v", got, err)
		}
		if e := r.GetEvent(); e.GetGap() {
			break
		}
		if got++; got == n {
			t.Fatal("every event arrived: nothing was dropped")
		}
		if got > n {
			t.Fatal("no gap marker")
		}
	}
}

// rawSubscriber opens a raw stream to ts with the gateway's key and small
// fixed flow-control windows (so the service's sends back up soon once it
// is not read), and subscribes it to topic. The stream ends with ctx.
func rawSubscriber(t *testing.T, ctx context.Context, ts *sockettest.Server, topic string) socketv1.SocketService_ConnectClient {
	t.Helper()
	target, opts := ts.Target()
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(window), grpc.WithInitialConnWindowSize(window))
	cc, err := grpc.NewClient(target, opts...)
	must(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	stream, err := socketv1.NewSocketServiceClient(cc).Connect(sockettest.WithKey(ctx, sockettest.GatewayKey))
	must(t, err)
	must(t, stream.Send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Subscribe{Subscribe: &socketv1.Subscribe{Topic: topic}}}))
	if r, err := stream.Recv(); err != nil || r.GetSubscribed().GetTopic() != topic {
		t.Fatalf("the subscription was not acknowledged: %v %v", r, err)
	}
	return stream
}

// A stream subscribed to a topic both exactly and by a pattern gets each
// event once; streams subscribed to other topics get none.
func TestEventsExactAndPatternOnOneStreamDeliverOnce(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	ts := sockettest.StartServer(t, sockettest.Spec{Name: "index", Bufconn: true, Opts: []socket.ServerOption{socket.WithMetrics(reg)}})
	c := sockettest.DialServer(t, ts, caller.WithKey(sockettest.GatewayKey))
	awaitReady(t, c)
	exact, _ := collect(t, c, "items/1")
	pattern, _ := collect(t, c, "items/*")
	other, _ := collect(t, c, "items/2")
	must(t, ts.Publish("items/1", nil, socket.Visibility{}))
	for _, ch := range []<-chan caller.Event{exact, pattern} {
		if e := next(t, ch); e.Topic != "items/1" || e.Seq != 1 {
			t.Fatalf("event %+v", e)
		}
	}
	must(t, ts.Publish("items/2", nil, socket.Visibility{}))
	if e := next(t, other); e.Topic != "items/2" {
		t.Fatalf("event %+v", e)
	}
	if e := next(t, pattern); e.Topic != "items/2" {
		t.Fatalf("pattern: event %+v", e)
	}
	none(t, exact, "a subscription to another topic")
	if d := promtest.Gather(t, reg).Value("streamgate_service_events_delivered_total", "service", "index"); d != 2 {
		t.Fatalf("event frames delivered = %v, want 2 (one per event for the stream)", d)
	}
}
