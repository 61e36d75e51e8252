package socket

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/deadline"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

// serverStream is one open socket on the service side. The Connect call's
// goroutine supervises it; one goroutine receives frames, and each admitted
// request runs on a worker. Whoever holds sendMu may Send: a handler that
// finds it free sends its own answer (no hand-off); otherwise the answer
// waits in out for the sender goroutine.
type serverStream struct {
	srv *Server
	gs  grpc.BidiStreamingServer[socketv1.ConnectRequest, socketv1.ConnectResponse]
	key *keyring.Entry

	ctx    context.Context // ends when the stream must stop; handlers derive from it
	cancel context.CancelCauseFunc

	sendMu     sync.Mutex                     // guards gs.SendMsg (sendLocked)
	out        chan *socketv1.ConnectResponse // frames for the sender
	drainNow   chan struct{}                  // closed: the sender sends the drain frame next
	flush      chan struct{}                  // closed: send what is queued, then stop
	senderDone chan struct{}                  // closed when the sender returned

	inFlight atomic.Int64
	handlers sync.WaitGroup // request goroutines
	draining atomic.Bool

	mu      sync.Mutex // guards running, closed
	running map[uint64]*run
	closed  bool // no more handlers start
}

// run is one request in flight; its identity tells a cancelled request
// from a later one that reuses its id. It holds the handler's context
// (handlerContext), so that a request allocates one struct for both.
type run struct {
	meta      wire.MetaContext // the request's meta, over the stream's context
	ctx       deadline.Context // the handler's context, over meta
	stopWatch func() bool      // a write's watch of Stop; nil for a read
}

// context returns the handler's context.
func (r *run) context() context.Context { return &r.ctx }

// cancel ends the handler's context (a cancel frame, or the handler
// returned).
func (r *run) cancel() {
	if r.stopWatch != nil {
		r.stopWatch()
	}
	r.ctx.Cancel()
}

// sendQueue is how many answers wait for the sender before handlers block.
// Blocked handlers keep their in-flight slots, so a caller that does not
// read its answers stops being served instead of growing memory.
const sendQueue = 64

var (
	errKeyRevoked = errors.New("key revoked")
	errStopped    = errors.New("server stopped")
	errDraining   = Errorf(CodeUnavailable, "the stream is draining: send the request on another stream").
			WithDetails(map[string]any{DetailReason: ReasonDraining})
	errStreamBusy = Errorf(CodeResourceExhausted, "too many requests in flight on this stream")
)

func (s *Server) connect(gs grpc.BidiStreamingServer[socketv1.ConnectRequest, socketv1.ConnectResponse]) error {
	key, err := s.authenticate(gs.Context())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(gs.Context())
	defer cancel(nil)
	st := &serverStream{
		srv:        s,
		gs:         gs,
		key:        key,
		ctx:        ctx,
		cancel:     cancel,
		out:        make(chan *socketv1.ConnectResponse, sendQueue),
		drainNow:   make(chan struct{}),
		flush:      make(chan struct{}),
		senderDone: make(chan struct{}),
		running:    map[uint64]*run{},
	}
	if !s.track(st) {
		return grpcstatus.Error(codes.Unavailable, "the service is draining")
	}
	defer s.untrack(st)
	if err := gs.SendHeader(metadata.Pairs(MetadataInstance, s.instance)); err != nil {
		return err
	}
	return st.run()
}

// run supervises the stream until it ends and returns its final status.
func (st *serverStream) run() error {
	st.srv.streamWG.Add(1)
	go func() {
		defer st.srv.streamWG.Done()
		st.sendLoop()
	}()
	received := make(chan error, 1)
	st.srv.streamWG.Add(1)
	go func() {
		defer st.srv.streamWG.Done()
		received <- st.recvLoop()
	}()

	var final error
	select {
	case err := <-received:
		if !errors.Is(err, io.EOF) {
			final = err
			break
		}
		// The caller half-closed: answer everything in flight, then end.
		answered := make(chan struct{})
		go func() { st.stopHandlers(); close(answered) }()
		select {
		case <-answered:
			close(st.flush)
			select {
			case <-st.senderDone:
				return nil
			case <-st.srv.hardStop:
				final = grpcstatus.Error(codes.Unavailable, "server stopped")
			}
		case <-st.key.Revoked():
			final = grpcstatus.Error(codes.Unauthenticated, "key revoked")
		case <-st.srv.hardStop:
			final = grpcstatus.Error(codes.Unavailable, "server stopped")
		}
	case <-st.key.Revoked():
		final = grpcstatus.Error(codes.Unauthenticated, "key revoked")
		st.cancel(errKeyRevoked)
	case <-st.srv.hardStop:
		final = grpcstatus.Error(codes.Unavailable, "server stopped")
		st.cancel(errStopped)
	}
	// Handlers see the cancellation and give up queueing answers. The
	// sender may be stuck in Send to a peer that does not read; returning
	// ends the gRPC stream, which frees it.
	st.cancel(final)
	st.stopHandlers()
	return final
}

// stopHandlers stops new handlers from starting and waits for those
// running.
func (st *serverStream) stopHandlers() {
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	st.handlers.Wait()
}

// recvLoop reads frames until the stream ends.
func (st *serverStream) recvLoop() error {
	for {
		f, err := st.gs.Recv()
		if err != nil {
			return err
		}
		switch k := f.GetFrame().(type) {
		case *socketv1.ConnectRequest_Request:
			st.onRequest(k.Request)
		case *socketv1.ConnectRequest_Cancel:
			st.onCancel(k.Cancel.GetId())
		case *socketv1.ConnectRequest_Subscribe:
			st.onSubscribe(k.Subscribe.GetTopic())
		case *socketv1.ConnectRequest_Unsubscribe:
			st.onUnsubscribe(k.Unsubscribe.GetTopic())
		default:
			st.reply(newResponse(0, false, nil, Errorf(CodeInvalidArgument, "empty frame: set request, cancel, subscribe or unsubscribe")))
		}
	}
}

// onRequest admits a request frame and starts its handler, or answers it
// at once with the reason it cannot run.
func (st *serverStream) onRequest(f *socketv1.Request) {
	id := f.GetId()
	_, raw := f.GetPayload().(*socketv1.Request_BodyRaw)
	if id == 0 {
		st.refuse(f, raw, Errorf(CodeInvalidArgument, "request id must not be 0"))
		return
	}
	if st.draining.Load() {
		st.refuse(f, raw, errDraining)
		return
	}
	adm, e := st.srv.admit(st.key, f)
	if e != nil {
		st.refuse(f, raw, e)
		return
	}
	n := st.inFlight.Add(1)
	if n > int64(st.srv.opts.streamInFlight) {
		st.inFlight.Add(-1)
		st.refuse(f, raw, errStreamBusy)
		return
	}
	if !st.srv.acquire() {
		st.inFlight.Add(-1)
		st.refuse(f, raw, errServerBusy)
		return
	}
	st.srv.obs.server(serverEvent{kind: admittedOnStream, n: n})
	r := &run{}
	st.srv.handlerContext(st.ctx, &adm, r)
	st.mu.Lock()
	_, dup := st.running[id]
	closed := st.closed
	if !dup && !closed {
		st.running[id] = r
		st.handlers.Add(1)
	}
	st.mu.Unlock()
	if dup || closed {
		r.cancel()
		st.inFlight.Add(-1)
		st.srv.release()
		st.srv.ended()
		if dup {
			st.refuse(f, raw, Errorf(CodeInvalidArgument, "request id %d is already in flight on this stream", id))
		}
		return
	}
	st.srv.workers.Go(task{st: st, r: r, id: id, adm: adm})
}

// serve runs one request and answers it, unless a cancel frame withdrew
// it. It holds the request's in-flight slots until the answer is sent or
// queued.
func (st *serverStream) serve(r *run, id uint64, adm *admitted) {
	returned := false
	defer func() {
		if !returned { // runtime.Goexit in the handler
			st.srv.ended()
			st.finish()
			st.handlers.Done()
		}
	}()
	res, e := st.srv.runObserved(r.context(), adm)
	returned = true
	st.srv.ended()
	r.cancel()
	st.mu.Lock()
	wanted := st.running[id] == r
	if wanted {
		delete(st.running, id)
	}
	st.mu.Unlock()
	st.srv.obs.answered(adm.action, e)
	if !wanted {
		st.finish()
		st.handlers.Done()
		return
	}
	var f *socketv1.ConnectResponse
	if e == nil && adm.raw {
		f = rawAnswer(id, res)
	} else {
		f = responseFrame(newResponse(id, adm.raw, res, e))
	}
	f.GetResponse().Replayed = replayedIn(r.context())
	st.answer(f)
}

// finish frees a handler's in-flight slots.
func (st *serverStream) finish() {
	st.inFlight.Add(-1)
	st.srv.release()
}

// answer sends a handler's answer, frees its slots and marks it done. When
// Send is free, the handler sends the answer itself rather than wake the
// sender. Send can then block on a caller that stops reading until the
// gRPC stream ends, which is only after run returned, so the handler
// counts as done before it sends (its worker is still waited for by
// Stop); the sender takes sendMu before it stops, so nothing sent here is
// cut off. Either way the slots are held until the answer is sent or
// queued, so a caller that does not read stops being served.
func (st *serverStream) answer(f *socketv1.ConnectResponse) {
	if !st.sendMu.TryLock() {
		st.send(f)
		st.finish()
		st.handlers.Done()
		return
	}
	st.handlers.Done()
	if st.ctx.Err() == nil {
		if err := st.sendLocked(f); err != nil {
			st.cancel(err)
		}
	}
	st.sendMu.Unlock()
	st.finish()
}

// sendLocked sends f. A frame that cannot be encoded (see encodeFrame)
// never reaches gRPC, which would end the stream for every request on it:
// an answer is replaced by an INTERNAL error for the same request, any
// other frame is dropped; both are logged. Called with sendMu held.
func (st *serverStream) sendLocked(f *socketv1.ConnectResponse) error {
	msg, err := wire.Encode(f, st.srv.opts.maxFrame)
	if err != nil {
		if msg = st.unencodable(f, err); msg == nil {
			return nil // dropped: the stream goes on
		}
	}
	return st.gs.SendMsg(msg)
}

// unencodable logs a frame that could not be encoded and returns what to
// send in its place: for an answer, an INTERNAL error for the same
// request; for anything else nothing (nil).
func (st *serverStream) unencodable(f *socketv1.ConnectResponse, cause error) *wire.Frame {
	resp := f.GetResponse()
	st.srv.opts.logger.Error("socket: a frame could not be sent", "service", st.srv.cfg.Name, "request_id", resp.GetId(), "error", cause)
	if resp == nil {
		return nil
	}
	e := Errorf(CodeInternal, "the answer could not be sent: %s", wire.Problem(cause))
	msg, err := wire.Encode(responseFrame(newResponse(resp.GetId(), false, nil, e)), st.srv.opts.maxFrame)
	if err != nil {
		return nil
	}
	return msg
}

// onCancel stops a request in flight; the caller expects no response.
func (st *serverStream) onCancel(id uint64) {
	st.mu.Lock()
	r, ok := st.running[id]
	delete(st.running, id)
	st.mu.Unlock()
	if ok {
		r.cancel()
	}
}

// drain tells the caller to move on; frames that still arrive are answered
// UNAVAILABLE (reason draining) without running.
func (st *serverStream) drain() {
	if !st.draining.Swap(true) {
		close(st.drainNow)
	}
}

func (st *serverStream) reply(r *socketv1.Response) {
	st.send(responseFrame(r))
}

// send queues a frame for the sender. Once the stream is over, frames are
// dropped.
func (st *serverStream) send(f *socketv1.ConnectResponse) {
	select {
	case st.out <- f:
	case <-st.senderDone:
	case <-st.ctx.Done():
	}
}

// sendLoop sends the frames that handlers queued while Send was busy, and
// the drain frame.
func (st *serverStream) sendLoop() {
	defer close(st.senderDone)
	drainNow := st.drainNow
	for {
		select {
		case <-drainNow:
			drainNow = nil
			drain := &socketv1.ConnectResponse{Frame: &socketv1.ConnectResponse_Drain{Drain: &socketv1.Drain{Reason: "shutdown"}}}
			if !st.sendQueued(drain) {
				return
			}
		case f := <-st.out:
			if !st.sendQueued(f) {
				return
			}
		case <-st.flush:
			// Every handler is done; one may still be sending its own
			// answer, which holding sendMu waits for.
			st.sendMu.Lock()
			defer st.sendMu.Unlock()
			for {
				select {
				case f := <-st.out:
					if err := st.sendLocked(f); err != nil {
						return
					}
				default:
					return
				}
			}
		case <-st.ctx.Done():
			return
		}
	}
}

// sendQueued sends f, then whatever else is queued, under sendMu. It
// reports false when the stream failed.
func (st *serverStream) sendQueued(f *socketv1.ConnectResponse) bool {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	for {
		if err := st.sendLocked(f); err != nil {
			st.cancel(err)
			return false
		}
		select {
		case f = <-st.out:
		default:
			return true
		}
	}
}
