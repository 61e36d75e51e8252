package socket_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// blockingServer registers WAIT, which reports the context it got on seen
// and returns when the context ends (with its error).
func blockingServer(t *testing.T, seen chan<- context.Context, opts ...socket.ServerOption) *sockettest.Server {
	return sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Opts: opts, Register: func(s *socket.Server) {
		must(t, s.Handle("WAIT", socket.HandlerFunc(func(ctx context.Context, _ *socket.Request) (json.RawMessage, error) {
			seen <- ctx
			<-ctx.Done()
			return nil, ctx.Err()
		})))
	}})
}

func TestCancelAndDeadlineReachTheHandler(t *testing.T) {
	t.Parallel()
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		seen := make(chan context.Context, 1)
		c := sockettest.DialServer(t, blockingServer(t, seen))
		ctx, cancel := context.WithCancel(sockettest.Context(t))
		errc := make(chan error, 1)
		go func() { _, err := c.Request(ctx, "WAIT", "", nil); errc <- err }()
		hctx := <-seen
		cancel()
		select {
		case <-hctx.Done():
		case <-time.After(testDeadline):
			t.Fatal("the handler's context did not end after the caller cancelled")
		}
		if !errors.Is(hctx.Err(), context.Canceled) {
			t.Fatalf("handler ctx err = %v, want Canceled", hctx.Err())
		}
		sockettest.WantCode(t, <-errc, socket.CodeCanceled)
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		seen := make(chan context.Context, 1)
		c := sockettest.DialServer(t, blockingServer(t, seen))
		// On a busy machine a short deadline may pass before the frame
		// reaches the server: try again (a few times) rather than wait
		// for a handler that never runs.
		var hctx context.Context
		var want time.Time
		var errc chan error
		for attempt := 1; hctx == nil; attempt++ {
			ctx, cancel := context.WithTimeout(sockettest.Context(t), time.Duration(attempt)*300*time.Millisecond)
			defer cancel()
			want, _ = ctx.Deadline()
			errc = make(chan error, 1)
			go func() { _, err := c.Request(ctx, "WAIT", "", nil); errc <- err }()
			select {
			case hctx = <-seen:
			case err := <-errc:
				if attempt == 5 {
					t.Fatalf("no request reached the handler in %d attempts; the last: %v", attempt, err)
				}
			}
		}
		got, ok := hctx.Deadline()
		if !ok {
			t.Fatal("handler context has no deadline")
		}
		if d := got.Sub(want); d < -300*time.Millisecond || d > 50*time.Millisecond {
			t.Fatalf("handler deadline %v differs from the caller's by %v", got, d)
		}
		<-hctx.Done()
		if !errors.Is(hctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("handler ctx err = %v, want DeadlineExceeded", hctx.Err())
		}
		sockettest.WantCode(t, <-errc, socket.CodeDeadlineExceeded)
	})
	t.Run("action timeout", func(t *testing.T) {
		t.Parallel()
		ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Register: func(s *socket.Server) {
			must(t, s.Handle("SLOW", socket.HandlerFunc(func(ctx context.Context, _ *socket.Request) (json.RawMessage, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}), socket.Timeout(50*time.Millisecond)))
		}})
		_, err := sockettest.DialServer(t, ts).Request(sockettest.Context(t), "SLOW", "", nil)
		sockettest.WantCode(t, err, socket.CodeDeadlineExceeded)
	})
}

func TestHandlerPanicIsIsolated(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true})
	c := sockettest.DialServer(t, ts)
	ctx := sockettest.Context(t)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, err := c.Request(ctx, "BOOM", "", nil)
				if status.CodeOf(err) != socket.CodeInternal {
					errs <- fmt.Errorf("BOOM: %v, want INTERNAL", err)
				}
				return
			}
			if _, err := caller.Call[sockettest.EchoOut](ctx, c, "ECHO", "1", sockettest.EchoIn{Delay: 5}); err != nil {
				errs <- fmt.Errorf("ECHO beside a panic: %v", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	stats := ts.Stats(t, "BOOM")
	if stats.GetErrorsByCode()["INTERNAL"] != 50 {
		t.Fatalf("BOOM stats %+v, want 50 INTERNAL", stats)
	}
}

func TestBadFrames(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Opts: []socket.ServerOption{socket.WithMaxBodySize(1024), socket.WithMaxFrameSize(64 << 10)}, Register: func(s *socket.Server) {
		sockettest.RegisterEcho(t, s)
		must(t, s.Handle("V2_ONLY", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
			return json.RawMessage(`true`), nil
		}), socket.Versions("v2", "v3")))
	}})
	stream, err := sockettest.RawConn(t, ts).Connect(sockettest.WithKey(sockettest.Context(t), sockettest.TestKey))
	must(t, err)
	roundTrip := func(f *socketv1.ConnectRequest) *socketv1.Response {
		t.Helper()
		must(t, stream.Send(f))
		r, err := stream.Recv()
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		return r.GetResponse()
	}
	req := func(r *socketv1.Request) *socketv1.ConnectRequest {
		return &socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: r}}
	}
	raw := func(s string) *socketv1.Request_BodyRaw { return &socketv1.Request_BodyRaw{BodyRaw: []byte(s)} }
	cases := []struct {
		name   string
		frame  *socketv1.ConnectRequest
		code   status.Code
		detail string
	}{
		{"empty frame", &socketv1.ConnectRequest{}, socket.CodeInvalidArgument, ""},
		{"zero id", req(&socketv1.Request{Action: "ECHO"}), socket.CodeInvalidArgument, ""},
		{"no action", req(&socketv1.Request{Id: 1}), socket.CodeInvalidArgument, ""},
		{"unknown action", req(&socketv1.Request{Id: 2, Action: "NOPE"}), socket.CodeNotFound, ""},
		{"oversized body", req(&socketv1.Request{Id: 3, Action: "ECHO", Payload: raw(`{"text":"` + strings.Repeat("x", 2000) + `"}`)}), socket.CodeInvalidArgument, "body_too_large"},
		{"invalid JSON", req(&socketv1.Request{Id: 4, Action: "ECHO", Payload: raw(`{"text":`)}), socket.CodeInvalidArgument, ""},
		{"unknown field", req(&socketv1.Request{Id: 5, Action: "ECHO", Payload: raw(`{"txt":"a"}`)}), socket.CodeInvalidArgument, ""},
		{"wrong type", req(&socketv1.Request{Id: 6, Action: "ECHO", Payload: raw(`{"text":1}`)}), socket.CodeInvalidArgument, ""},
		{"version not supported", req(&socketv1.Request{Id: 7, Action: "V2_ONLY", Meta: &socketv1.Meta{ApiVersion: "v1"}}), socket.CodeNotSupported, ""},
		{"no version", req(&socketv1.Request{Id: 8, Action: "V2_ONLY"}), socket.CodeNotSupported, ""},
	}
	for _, tc := range cases {
		r := roundTrip(tc.frame)
		e := r.GetError()
		if r.GetOk() || e.GetCode() != string(tc.code) || e.GetMessage() == "" {
			t.Errorf("%s: response %v, want %s with a message", tc.name, r, tc.code)
		}
		if tc.detail != "" && e.GetDetails().GetFields()[socket.DetailReason].GetStringValue() != tc.detail {
			t.Errorf("%s: details %v, want reason %s", tc.name, e.GetDetails(), tc.detail)
		}
	}
	// The stream survived all of that.
	r := roundTrip(req(&socketv1.Request{Id: 9, Action: "V2_ONLY", Meta: &socketv1.Meta{ApiVersion: "v3"}, Payload: raw(``)}))
	if !r.GetOk() || string(r.GetResultRaw()) != "true" {
		t.Fatalf("after bad frames: %v", r)
	}
	// A duplicate id of a request in flight is refused; the first still
	// gets its answer.
	must(t, stream.Send(req(&socketv1.Request{Id: 10, Action: "ECHO", Payload: raw(`{"delay_ms":200}`)})))
	dup := roundTrip(req(&socketv1.Request{Id: 10, Action: "ECHO", Payload: raw(`{}`)}))
	if dup.GetError().GetCode() != string(socket.CodeInvalidArgument) {
		t.Fatalf("duplicate id: %v", dup)
	}
	if first, err := stream.Recv(); err != nil || !first.GetResponse().GetOk() {
		t.Fatalf("first of the duplicate ids: %v, %v", first, err)
	}
	// A frame beyond the transport limit ends the stream with a clear grpcstatus.
	must(t, stream.Send(req(&socketv1.Request{Id: 11, Action: "ECHO", Payload: raw(strings.Repeat(" ", 100<<10))})))
	_, err = stream.Recv()
	if grpcstatus.Code(err) != codes.ResourceExhausted || !strings.Contains(grpcstatus.Convert(err).Message(), "larger than max") {
		t.Fatalf("oversized frame: %v, want ResourceExhausted", err)
	}
}

func TestJSONValueBodyForGrpcurl(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true})
	body, err := structpb.NewValue(map[string]any{"text": "Oska"})
	must(t, err)
	resp, err := sockettest.RawConn(t, ts).Call(sockettest.WithKey(sockettest.Context(t), sockettest.TestKey), &socketv1.CallRequest{Request: &socketv1.Request{
		Action: "ECHO", ResourceId: "1", Payload: &socketv1.Request_Body{Body: body},
	}})
	must(t, err)
	got := resp.GetResponse().GetResult().GetStructValue().AsMap()
	if !resp.GetResponse().GetOk() || got["text"] != "Oska" || got["id"] != "1" {
		t.Fatalf("Call answered %v; want the result as a JSON value", resp)
	}
}

func TestHalfCloseAnswersInFlightThenEnds(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true})
	stream, err := sockettest.RawConn(t, ts).Connect(sockettest.WithKey(sockettest.Context(t), sockettest.TestKey))
	must(t, err)
	for id := uint64(1); id <= 20; id++ {
		must(t, stream.Send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{
			Id: id, Action: "ECHO", Payload: &socketv1.Request_BodyRaw{BodyRaw: []byte(`{"delay_ms":20}`)},
		}}}))
	}
	must(t, stream.CloseSend())
	got := map[uint64]bool{}
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		must(t, err)
		if !r.GetResponse().GetOk() {
			t.Fatalf("response %v", r)
		}
		got[r.GetResponse().GetId()] = true
	}
	if len(got) != 20 {
		t.Fatalf("got %d answers before the stream ended, want 20", len(got))
	}
}

func TestInFlightBound(t *testing.T) {
	t.Parallel()
	seen := make(chan context.Context, 100)
	ts := blockingServer(t, seen, socket.WithMaxInFlight(8, 12))
	ctx, cancel := context.WithCancel(sockettest.Context(t))
	defer cancel()
	exhausted := make(chan struct{}, 60)
	var wg sync.WaitGroup
	// Two streams (two clients): 8 per stream, 12 on the server.
	for _, c := range []*caller.Client{sockettest.DialServer(t, ts), sockettest.DialServer(t, ts)} {
		for range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.Request(ctx, "WAIT", "", nil)
				if status.CodeOf(err) == socket.CodeResourceExhausted {
					exhausted <- struct{}{}
				}
			}()
		}
	}
	// Every request is answered or running before anything is cancelled:
	// 12 handlers run, the other 48 are refused at once.
	for range 12 {
		sockettest.Recv(t, seen)
	}
	for range 60 - 12 {
		sockettest.Recv(t, exhausted)
	}
	select {
	case <-seen:
		t.Fatal("a 13th handler started beyond the server bound")
	default:
	}
	cancel()
	wg.Wait()
	if n := len(exhausted); n != 0 {
		t.Fatalf("%d more requests got RESOURCE_EXHAUSTED than the %d beyond the bound", n, 60-12)
	}
}

func TestFloodWithoutReadingKeepsMemoryBounded(t *testing.T) {
	seen := make(chan context.Context, 1000)
	release := make(chan struct{})
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Opts: []socket.ServerOption{socket.WithMaxInFlight(16, 16)}, Register: func(s *socket.Server) {
		must(t, s.Handle("HOLD", socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
			seen <- ctx
			<-release
			return r.Body, nil
		})))
	}})
	ctx, cancel := context.WithCancel(sockettest.Context(t))
	defer cancel()
	stream, err := sockettest.RawConn(t, ts).Connect(sockettest.WithKey(ctx, sockettest.TestKey))
	must(t, err)
	body := []byte(`"` + strings.Repeat("x", 4096) + `"`)
	const frames = 20000 // 80 MB if it were all kept
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	sentAll := make(chan int, 1)
	go func() {
		n := 0
		for id := uint64(1); id <= frames; id++ {
			if stream.Send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{
				Id: id, Action: "HOLD", Payload: &socketv1.Request_BodyRaw{BodyRaw: body},
			}}}) != nil {
				break
			}
			n++
		}
		sentAll <- n
	}()
	var sent int
	select {
	case sent = <-sentAll:
		t.Fatalf("the service took all %d frames without anyone reading its answers", sent)
	case <-time.After(2 * time.Second):
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	if grown > 32<<20 {
		t.Fatalf("heap grew by %d MiB while flooded; want bounded", grown>>20)
	}
	t.Logf("heap grew %d KiB while a reader-less client flooded the stream", grown>>10)
	close(release)
	cancel()
	<-sentAll
}

func TestDescribeReportsActionsAndStats(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true})
	c := sockettest.DialServer(t, ts)
	ctx := sockettest.Context(t)
	for range 5 {
		_, err := c.Request(ctx, "ECHO", "1", []byte(`{"text":"x"}`))
		must(t, err)
	}
	_, err := c.Request(ctx, "ECHO", "1", []byte(`{"bad":1}`))
	sockettest.WantCode(t, err, socket.CodeInvalidArgument)
	d, err := sockettest.RawConn(t, ts).Describe(sockettest.WithKey(ctx, sockettest.TestKey), &socketv1.DescribeRequest{})
	must(t, err)
	if d.GetService() != "test" || d.GetInstance() != socket.ServerInstance(ts.Server) || len(d.GetActions()) != 2 {
		t.Fatalf("describe = %v", d)
	}
	echo := d.GetActions()[1]
	if echo.GetName() != "ECHO" || echo.GetKind() != socketv1.ActionKind_ACTION_KIND_READ || !echo.GetIdempotent() {
		t.Fatalf("ECHO described as %v", echo)
	}
	s := echo.GetStats()
	if s.GetCount() != 6 || s.GetErrors() != 1 || s.GetErrorsByCode()["INVALID_ARGUMENT"] != 1 || s.GetLatencyMax().AsDuration() <= 0 || s.GetLatencyP99().AsDuration() < s.GetLatencyP50().AsDuration() {
		t.Fatalf("ECHO stats = %v", s)
	}
	if _, err := sockettest.RawConn(t, ts).Describe(ctx, &socketv1.DescribeRequest{}); grpcstatus.Code(err) != codes.Unauthenticated {
		t.Fatalf("Describe without a key: %v", err)
	}
}

func TestHealthAndReflection(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{})
	cc := sockettest.RawConnCC(t, ts)
	ctx := sockettest.Context(t)
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "streamgate.socket.v1.SocketService"})
	must(t, err)
	if h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v", h.GetStatus())
	}
	rs, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	must(t, err)
	must(t, rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}))
	resp, err := rs.Recv()
	must(t, err)
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, ","), "streamgate.socket.v1.SocketService") {
		t.Fatalf("reflection lists %v", names)
	}
	must(t, rs.CloseSend())
}
