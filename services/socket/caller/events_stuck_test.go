package caller_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
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
	healthy := sockettest.StartServer(t, sockettest.Spec{})
	stuck := startStuckService(t)
	c := sockettest.Dial(t, healthy.Addr+","+stuck, caller.WithConnectTimeout(300*time.Millisecond))
	awaitReady(t, c, 2)
	next := sockettest.Events(t, c, "items/live")

	// Far more subscribe frames than the stuck stream's window and queue
	// hold: each Subscribe gives up waiting for the stuck instance's
	// acknowledgement after the connect timeout.
	const n = 700
	long := strings.Repeat("x", 200)
	var wg sync.WaitGroup
	stops := make(chan func(), n)
	for i := range n {
		wg.Go(func() {
			stop, err := c.Subscribe(sockettest.Context(t), fmt.Sprintf("items/%s%d", long, i), func(caller.Event) {})
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
	case <-sockettest.Context(t).Done():
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
	case <-sockettest.Context(t).Done():
		t.Fatal("stop blocked behind the stuck instance")
	}
	must(t, healthy.Publish("items/live", `{}`, socket.Visibility{Public: true}))
	if e := next(); e.Topic != "items/live" {
		t.Fatalf("event %+v", e)
	}
}

// window is the flow-control window of the stuck service.
const window = 64 << 10
