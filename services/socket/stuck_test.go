package socket_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// floodWithoutReading opens a raw stream and sends requests whose large
// answers it never reads; it returns once the service's sender is stuck on
// them: it has written (nearly) the whole flow-control window, and the
// answer it is writing is larger than the window.
func floodWithoutReading(t *testing.T, ts *sockettest.Server) socketv1.SocketService_ConnectClient {
	t.Helper()
	stream, stuck := flood(t, ts)
	select {
	case <-stuck:
	case <-time.After(testDeadline):
		t.Fatal("the service never filled the stream's window")
	}
	return stream
}

// window is the flow-control window of the flooding client.
const window = 64 << 10

// flood sends the frames; stuck closes when the client's connection has
// read most of window (the service cannot send more).
func flood(t *testing.T, ts *sockettest.Server) (socketv1.SocketService_ConnectClient, <-chan struct{}) {
	t.Helper()
	stuck := make(chan struct{})
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &readCounter{Conn: c, at: window - 1<<10, reached: stuck}, nil
	}
	// A fixed window (no BDP growth) so the client's transport does not
	// buffer everything for its idle reader.
	cc, err := grpc.NewClient(ts.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dial),
		grpc.WithInitialWindowSize(window), grpc.WithInitialConnWindowSize(window))
	must(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	stream, err := socketv1.NewSocketServiceClient(cc).Connect(sockettest.WithKey(sockettest.Context(t), sockettest.TestKey))
	must(t, err)
	go func() {
		for id := uint64(1); id <= 2000; id++ {
			if stream.Send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{
				Id: id, Action: "BIG", Payload: &socketv1.Request_BodyRaw{BodyRaw: []byte(`{}`)},
			}}}) != nil {
				return
			}
		}
	}()
	return stream, stuck
}

// readCounter closes reached once at bytes were read from its connection.
type readCounter struct {
	net.Conn
	at      int64
	read    atomic.Int64
	reached chan struct{}
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if before := c.read.Add(int64(n)) - int64(n); before < c.at && before+int64(n) >= c.at {
		close(c.reached)
	}
	return n, err
}

func bigServer(t *testing.T, started chan<- struct{}) *sockettest.Server {
	big := json.RawMessage(`"` + strings.Repeat("x", 64<<10) + `"`)
	return sockettest.StartServer(t, sockettest.Spec{Opts: []socket.ServerOption{socket.WithMaxInFlight(4, 100), socket.WithDrainTimeout(300 * time.Millisecond)}, Register: func(s *socket.Server) {
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
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true})
	stream, err := sockettest.RawConn(t, ts).Connect(sockettest.WithKey(sockettest.Context(t), sockettest.TestKey))
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
