package socket_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
)

// floodWithoutReading opens a raw stream and sends requests whose large
// answers it never reads, until the service stops taking them.
func floodWithoutReading(t *testing.T, ts *testServer) socketv1.SocketService_ConnectClient {
	t.Helper()
	stream, sent := flood(t, ts)
	select {
	case <-sent:
	case <-time.After(2 * time.Second):
	}
	time.Sleep(200 * time.Millisecond) // let the service take what it will
	return stream
}

// flood sends the frames; sent closes when all went out or Send failed.
func flood(t *testing.T, ts *testServer) (socketv1.SocketService_ConnectClient, <-chan struct{}) {
	t.Helper()
	// A fixed window (no BDP growth) so the client's transport does not
	// buffer everything for its idle reader.
	cc, err := grpc.NewClient(ts.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	must(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	stream, err := socketv1.NewSocketServiceClient(cc).Connect(withKey(testContext(t), testKey))
	must(t, err)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for id := uint64(1); id <= 2000; id++ {
			if stream.Send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{
				Id: id, Action: "BIG", Payload: &socketv1.Request_BodyRaw{BodyRaw: []byte(`{}`)},
			}}}) != nil {
				return
			}
		}
	}()
	return stream, sent
}

func bigServer(t *testing.T, started chan<- struct{}) *testServer {
	big := json.RawMessage(`"` + strings.Repeat("x", 64<<10) + `"`)
	return startServer(t, serverSpec{opts: []socket.ServerOption{socket.WithMaxInFlight(4, 100), socket.WithDrainTimeout(300 * time.Millisecond)}, register: func(s *socket.Server) {
		must(t, s.Handle("BIG", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
			select {
			case started <- struct{}{}:
			default:
			}
			return big, nil
		})))
	}})
}

func TestDrainIsBoundedWhenACallerStopsReading(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	ts := bigServer(t, started)
	floodWithoutReading(t, ts)
	<-started
	begin := time.Now()
	ts.Shutdown()
	t.Logf("shutdown took %v", time.Since(begin))
	if took := time.Since(begin); took > 5*time.Second {
		t.Fatalf("shutdown took %v with a drain timeout of 300ms", took)
	}
}

func TestRevokeEndsAStreamThatStoppedReading(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	ts := bigServer(t, started)
	stream := floodWithoutReading(t, ts)
	<-started
	ts.Keys.Revoke("test")
	// Read what was queued; the stream must end with UNAUTHENTICATED.
	for {
		_, err := stream.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("stream ended with %v, want Unauthenticated", err)
		}
		return
	}
}

func TestCancelledIDReusedGetsItsOwnAnswer(t *testing.T) {
	t.Parallel()
	ts := startServer(t, serverSpec{bufconn: true})
	stream, err := rawConn(t, ts).Connect(withKey(testContext(t), testKey))
	must(t, err)
	send := func(f *socketv1.ConnectRequest) { t.Helper(); must(t, stream.Send(f)) }
	// Request 7 is slow and ignores nothing: it is cancelled, then id 7 is
	// reused for a quick request.
	send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{
		Id: 7, Action: "ECHO", Payload: &socketv1.Request_BodyRaw{BodyRaw: []byte(`{"text":"first","delay_ms":100}`)},
	}}})
	send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Cancel{Cancel: &socketv1.Cancel{Id: 7}}})
	send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{
		Id: 7, Action: "ECHO", Payload: &socketv1.Request_BodyRaw{BodyRaw: []byte(`{"text":"second","delay_ms":50}`)},
	}}})
	must(t, stream.CloseSend())
	var answers []string
	for {
		r, err := stream.Recv()
		if err != nil {
			break
		}
		answers = append(answers, string(r.GetResponse().GetResultRaw()))
	}
	if len(answers) != 1 || !strings.Contains(answers[0], "second") {
		t.Fatalf("answers for id 7: %q; want only the second request's", answers)
	}
}
