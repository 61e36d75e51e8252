package socket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/promtest"
	"github.com/streamgate/streamgate/services/socket"
)

// stuckService accepts streams and never reads them; its health check
// answers, so the client's heartbeat keeps the stream.
type stuckService struct {
	socketv1.UnimplementedSocketServiceServer
}

func (stuckService) Connect(s grpc.BidiStreamingServer[socketv1.ConnectRequest, socketv1.ConnectResponse]) error {
	if err := s.SendHeader(metadata.Pairs(socket.MetadataInstance, "stuck")); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

// startStuckService serves stuckService on loopback with a fixed 64 KiB
// window, so a client's frames soon wait.
func startStuckService(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	gs := grpc.NewServer(grpc.InitialWindowSize(window), grpc.InitialConnWindowSize(window))
	socketv1.RegisterSocketServiceServer(gs, stuckService{})
	healthpb.RegisterHealthServer(gs, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return lis.Addr().String()
}

// One instance that stops reading its stream must not hold up the
// client's other (un)subscriptions, nor events from a healthy instance.
func TestEventsAStuckInstanceDoesNotStallSubscriptions(t *testing.T) {
	t.Parallel()
	healthy := startServer(t, serverSpec{})
	stuck := startStuckService(t)
	c := dial(t, healthy.Addr+","+stuck, socket.WithConnectTimeout(300*time.Millisecond))
	awaitReady(t, c, 2)
	events, _ := collect(t, c, "items/live")

	// Far more subscribe frames than the stuck stream's window and queue
	// hold: each Subscribe gives up waiting for the stuck instance's
	// acknowledgement after the connect timeout.
	const n = 700
	long := strings.Repeat("x", 200)
	var wg sync.WaitGroup
	stops := make(chan func(), n)
	for i := range n {
		wg.Go(func() {
			stop, err := c.Subscribe(testContext(t), fmt.Sprintf("items/%s%d", long, i), func(socket.Event) {})
			if err != nil {
				t.Error(err)
				return
			}
			stops <- stop
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(stops); close(done) }()
	select {
	case <-done:
	case <-time.After(testDeadline):
		t.Fatal("Subscribe calls blocked behind the stuck instance")
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for stop := range stops {
			stop()
		}
	}()
	select {
	case <-stopped:
	case <-time.After(testDeadline):
		t.Fatal("stop blocked behind the stuck instance")
	}
	must(t, healthy.Publish("items/live", `{}`, socket.Visibility{Public: true}))
	if e := next(t, events); e.Topic != "items/live" {
		t.Fatalf("event %+v", e)
	}
}

// A key limited to some actions may not subscribe: events carry whole
// objects, whatever action changed them.
func TestEventsActionScopedKeyMayNotSubscribe(t *testing.T) {
	t.Parallel()
	ts := startServer(t, serverSpec{bufconn: true})
	scoped := dialServer(t, ts, socket.WithKey(readOnlyKey))
	awaitReady(t, scoped, 1)
	_, err := scoped.Subscribe(testContext(t), "*", func(socket.Event) {})
	if socket.CodeOf(err) != socket.CodePermissionDenied {
		t.Fatalf("Subscribe with an action-scoped key: %v, want PERMISSION_DENIED", err)
	}
	// An unscoped key still subscribes.
	plain := dialServer(t, ts)
	awaitReady(t, plain, 1)
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
	ts := startServer(t, serverSpec{bufconn: true})
	slow := rawSubscriber(t, testContext(t), ts, "items/*")
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
func rawSubscriber(t *testing.T, ctx context.Context, ts *testServer, topic string) socketv1.SocketService_ConnectClient {
	t.Helper()
	target, opts := ts.Addr, []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(window), grpc.WithInitialConnWindowSize(window)}
	if ts.dialer != nil {
		target, opts = "passthrough:///bufnet", append(opts, grpc.WithContextDialer(ts.dialer))
	}
	cc, err := grpc.NewClient(target, opts...)
	must(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	stream, err := socketv1.NewSocketServiceClient(cc).Connect(withKey(ctx, gatewayKey))
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
	ts := startServer(t, serverSpec{name: "index", bufconn: true, opts: []socket.ServerOption{socket.WithMetrics(reg)}})
	c := dialServer(t, ts, socket.WithKey(gatewayKey))
	awaitReady(t, c, 1)
	exact, _ := collect(t, c, "items/1")
	pattern, _ := collect(t, c, "items/*")
	other, _ := collect(t, c, "items/2")
	must(t, ts.Publish("items/1", nil, socket.Visibility{}))
	for _, ch := range []<-chan socket.Event{exact, pattern} {
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
