package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// env is what one case runs with: its context (bounded by -timeout) and
// the connections and streams it opened, all closed when the case ends.
type env struct {
	ctx    context.Context
	cfg    *Options
	prefix string // makes counter names, PEEK ids and topics unique to this run

	mu    sync.Mutex // guards conns
	conns []*grpc.ClientConn
}

// close closes every connection the case opened (which ends its streams
// and their receivers).
func (e *env) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.conns {
		_ = c.Close()
	}
	e.conns = nil
}

// conn opens a new connection to the service.
func (e *env) conn(opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	all := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, e.cfg.DialOptions...)
	cc, err := grpc.NewClient(e.cfg.Addr, append(all, opts...)...)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.conns = append(e.conns, cc)
	e.mu.Unlock()
	return cc, nil
}

// withKey returns ctx with `authorization: Bearer key`; an empty key
// sends no authorization.
func withKey(ctx context.Context, key string) context.Context {
	if key == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

// withRawAuth returns ctx with the authorization metadata as given.
func withRawAuth(ctx context.Context, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", value)
}

// windowOptions keep a connection at HTTP/2's smallest flow-control
// window (no dynamic growth), so a service cannot send far ahead of what
// the kit reads.
func windowOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(1 << 16), grpc.WithInitialConnWindowSize(1 << 16)}
}

// jsonUnmarshal decodes JSON bytes.
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// stream is one Connect stream as the kit drives it: frames in, frames
// out, with a receiver goroutine that ends with the stream.
type stream struct {
	cs     grpc.BidiStreamingClient[socketv1.ConnectRequest, socketv1.ConnectResponse]
	cancel context.CancelFunc
	nextID atomic.Uint64

	frames  chan *socketv1.ConnectResponse // what the receiver read
	ended   chan struct{}                  // closed when the receiver stopped; endErr is then set
	endErr  error                          // io.EOF for an OK end, else the status error
	reading sync.Once

	stash []*socketv1.ConnectResponse // frames read but not yet wanted (used by one goroutine)
}

// open opens a stream on a new connection with the key (the case's key
// by default). The receiver starts at once unless lazy is set (see read).
func (e *env) open(key string, lazy bool, opts ...grpc.DialOption) (*stream, error) {
	cc, err := e.conn(opts...)
	if err != nil {
		return nil, err
	}
	return e.openOn(cc, key, lazy)
}

// openOn opens a stream on cc.
func (e *env) openOn(cc *grpc.ClientConn, key string, lazy bool) (*stream, error) {
	ctx, cancel := context.WithCancel(withKey(e.ctx, key))
	cs, err := socketv1.NewSocketServiceClient(cc).Connect(ctx, grpc.ForceCodec(frameCodec{}))
	if err != nil {
		cancel()
		return nil, err
	}
	st := &stream{cs: cs, cancel: cancel, frames: make(chan *socketv1.ConnectResponse, 4096), ended: make(chan struct{})}
	if !lazy {
		st.read()
	}
	return st, nil
}

// read starts the receiver (once).
func (st *stream) read() {
	st.reading.Do(func() {
		go func() {
			defer close(st.ended)
			for {
				f, err := st.cs.Recv()
				if err != nil {
					st.endErr = err
					return
				}
				select {
				case st.frames <- f:
				case <-st.cs.Context().Done():
					st.endErr = st.cs.Context().Err()
					return
				}
			}
		}()
	})
}

// header waits for the stream's header metadata (or its refusal).
func (st *stream) header() (metadata.MD, error) { return st.cs.Header() }

// send sends one frame.
func (st *stream) send(f *socketv1.ConnectRequest) error { return st.cs.Send(f) }

// sendRaw sends bytes as one frame, whatever they encode.
func (st *stream) sendRaw(b []byte) error { return st.cs.SendMsg(rawFrame(b)) }

// request sends a request frame, numbering it when its id is 0, and
// returns its id.
func (st *stream) request(r *socketv1.Request) (uint64, error) {
	if r.Id == 0 {
		r.Id = st.nextID.Add(1)
	}
	return r.Id, st.send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: r}})
}

// call sends a request and waits for its response.
func (st *stream) call(ctx context.Context, r *socketv1.Request) (*socketv1.Response, error) {
	id, err := st.request(r)
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", r.GetAction(), err)
	}
	return st.response(ctx, id)
}

// response waits for the response to id.
func (st *stream) response(ctx context.Context, id uint64) (*socketv1.Response, error) {
	f, err := st.await(ctx, func(f *socketv1.ConnectResponse) bool { return f.GetResponse() != nil && f.GetResponse().GetId() == id })
	if err != nil {
		return nil, fmt.Errorf("waiting for the response to request %d: %w", id, err)
	}
	return f.GetResponse(), nil
}

// await returns the first frame, stashed or new, that want accepts;
// the others stay stashed for later waits.
func (st *stream) await(ctx context.Context, want func(*socketv1.ConnectResponse) bool) (*socketv1.ConnectResponse, error) {
	for i, f := range st.stash {
		if want(f) {
			st.stash = append(st.stash[:i], st.stash[i+1:]...)
			return f, nil
		}
	}
	for {
		f, err := st.next(ctx)
		if err != nil {
			return nil, err
		}
		if want(f) {
			return f, nil
		}
		st.stash = append(st.stash, f)
	}
}

// next returns the next frame read from the stream (not the stash).
func (st *stream) next(ctx context.Context) (*socketv1.ConnectResponse, error) {
	select {
	case f := <-st.frames:
		return f, nil
	default:
	}
	select {
	case f := <-st.frames:
		return f, nil
	case <-st.ended:
		select {
		case f := <-st.frames:
			return f, nil
		default:
		}
		return nil, &endedError{st.endErr}
	case <-ctx.Done():
		return nil, errors.New("timed out")
	}
}

// end waits for the stream to end and returns its final status: nil for
// an OK end.
func (st *stream) end(ctx context.Context) error {
	for {
		_, err := st.next(ctx)
		var ended *endedError
		if errors.As(err, &ended) {
			if errors.Is(ended.err, io.EOF) {
				return nil
			}
			return ended.err
		}
		if err != nil {
			return err
		}
	}
}

// close half-closes the stream: the service answers what is in flight,
// then ends it.
func (st *stream) close() error { return st.cs.CloseSend() }

// endedError is the end of a stream met while waiting for a frame.
type endedError struct{ err error }

func (e *endedError) Error() string {
	if errors.Is(e.err, io.EOF) {
		return "the stream ended"
	}
	if s, ok := status.FromError(e.err); ok {
		return fmt.Sprintf("the stream ended with %s: %s", s.Code(), s.Message())
	}
	return "the stream ended: " + e.err.Error()
}

// rawFrame is a frame sent as the bytes it holds.
type rawFrame []byte

// frameCodec is gRPC's proto codec, which also sends rawFrame bytes as
// they are (for frames no generated type can express).
type frameCodec struct{}

func (frameCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case rawFrame:
		return m, nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("conformance: cannot encode %T", v)
}

func (frameCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("conformance: cannot decode into %T", v)
	}
	return proto.Unmarshal(data, m)
}

func (frameCodec) Name() string { return "proto" }

// req builds a request frame whose body is sent as body_raw JSON (nil:
// no body).
func req(action, id string, body any) *socketv1.Request {
	r := &socketv1.Request{Action: action, ResourceId: id}
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			b, _ = json.Marshal(body)
		}
		r.Payload = &socketv1.Request_BodyRaw{BodyRaw: b}
	}
	return r
}

// result decodes a successful response's result (either form) into v.
func result(r *socketv1.Response, v any) error {
	if !r.GetOk() {
		return fmt.Errorf("want ok, got %s", describeError(r.GetError()))
	}
	var b []byte
	switch o := r.GetOutcome().(type) {
	case *socketv1.Response_ResultRaw:
		b = o.ResultRaw
	case *socketv1.Response_Result:
		var err error
		if b, err = protojson.Marshal(o.Result); err != nil {
			return err
		}
	default:
		b = []byte("null")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("the result %s does not decode: %w", clip(b), err)
	}
	return nil
}

// answerTo waits for the response to id and decodes its result into a
// T; what names the request when the result is not one.
func answerTo[T any](ctx context.Context, st *stream, id uint64, what string) (T, error) {
	var got T
	r, err := st.response(ctx, id)
	if err != nil {
		return got, err
	}
	if err := result(r, &got); err != nil {
		return got, fmt.Errorf("%s: %w", what, err)
	}
	return got, nil
}

// sleptResult is SLOW's result: how long it slept.
type sleptResult struct {
	SleptMs int `json:"slept_ms"`
}

// wantSlept waits for the answer to the SLOW request id and checks that
// it slept ms; what names the request in the errors.
func wantSlept(ctx context.Context, st *stream, id uint64, ms int, what string) error {
	got, err := answerTo[sleptResult](ctx, st, id, what)
	if err != nil {
		return err
	}
	if got.SleptMs != ms {
		return fmt.Errorf("%s: want slept_ms %d, got %d", what, ms, got.SleptMs)
	}
	return nil
}

// wantError checks that a response is the error with the code and, when
// reason is not empty, details.reason.
func wantError(r *socketv1.Response, code, reason string) error {
	e := r.GetError()
	switch {
	case r.GetOk() || e == nil:
		return fmt.Errorf("want %s, got ok=%v with no error", code, r.GetOk())
	case e.GetCode() != code:
		return fmt.Errorf("want %s, got %s", code, describeError(e))
	case reason != "" && reasonOf(e) != reason:
		return fmt.Errorf("want %s reason %q, got %s", code, reason, describeError(e))
	case e.GetMessage() == "":
		return fmt.Errorf("%s has no message", code)
	}
	return nil
}

// reasonOf returns an error's details.reason.
func reasonOf(e *socketv1.Error) string {
	return e.GetDetails().GetFields()["reason"].GetStringValue()
}

func describeError(e *socketv1.Error) string {
	if e == nil {
		return "no error"
	}
	s := e.GetCode() + " " + fmt.Sprintf("%q", e.GetMessage())
	if r := reasonOf(e); r != "" {
		s += " reason " + r
	}
	return s
}

// clip shortens b for a message.
func clip(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}
