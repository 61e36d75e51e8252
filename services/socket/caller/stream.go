package caller

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/deadline"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/status"
)

// open starts a stream on cn and waits until the service accepts it. The
// service's catalogue is asked for in the background (see describe): a
// reconnect does not wait for it.
func (inst *instance) open(cn *conn) (*clientStream, error) {
	c := inst.c
	// The stream outlives the instance's retirement (it drains), but
	// opening it is bounded by the connect timeout and the retirement.
	ctx, cancel := context.WithCancel(inst.c.ctx)
	timer := time.AfterFunc(c.cfg.connectTimeout, cancel)
	unwatch := context.AfterFunc(inst.ctx, cancel)
	cs, err := cn.stub.Connect(c.cfg.outgoingContext(ctx), grpc.ForceCodecV2(wire.Codec{}))
	if err == nil {
		var md metadata.MD
		md, err = cs.Header()
		if err == nil && len(md.Get(wire.MetadataInstance)) == 0 {
			// Refused before any frame: the status follows.
			_, err = cs.Recv()
			if err == nil {
				err = errors.New("stream opened without an instance header")
			}
		}
	}
	timedOut := !timer.Stop()
	retired := !unwatch()
	if err == nil && (timedOut || retired) {
		err = errors.New("stream not accepted in time")
	}
	if err != nil {
		cancel()
		return nil, status.FromGRPC(err)
	}
	st := &clientStream{
		inst:      inst,
		conn:      cn,
		cs:        cs,
		cancel:    cancel,
		sendq:     make(chan outgoing, 256),
		described: make(chan struct{}),
		pending:   map[uint64]*call{},
		changed:   make(chan struct{}),
		topics:    newTopicFrames(),
	}
	cn.streams.Add(4)
	c.wg.Add(4)
	go func() { defer c.wg.Done(); defer cn.streams.Done(); st.sendTopics() }()
	go func() { defer c.wg.Done(); defer cn.streams.Done(); st.sendLoop(ctx) }()
	go func() { defer c.wg.Done(); defer cn.streams.Done(); st.recvLoop() }()
	go func() { defer c.wg.Done(); defer cn.streams.Done(); st.describe() }()
	return st, nil
}

// describe asks the instance for the service's catalogue, within the
// connect timeout, and closes described when done. A failure is logged:
// actions stay as the client knew them (unknown ones are taken for writes).
func (st *clientStream) describe() {
	defer close(st.described)
	c := st.inst.c
	ctx, cancel := context.WithTimeout(st.inst.ctx, c.cfg.connectTimeout)
	defer cancel()
	d, err := st.conn.stub.Describe(c.cfg.outgoingContext(ctx), &socketv1.DescribeRequest{})
	if err != nil {
		if st.inst.ctx.Err() == nil {
			c.cfg.logger.Warn("socket: describe failed", "target", c.pool.target, "addr", st.inst.addr, "error", err)
		}
		return
	}
	c.catalogue.learn(d)
}

// streamState is where a stream is in its life. It only moves forward.
type streamState int32

const (
	streamOpen     streamState = iota // takes new requests
	streamDraining                    // takes no new requests; the sender half-closes once the registered ones went out
	streamDrained                     // ended after draining: the service asked us to move
	streamBroken                      // ended without a drain
)

// clientStream is one open socket on the caller side. Whoever holds
// sendMu may Send: a caller that finds it free sends its own frame (no
// hand-off to another goroutine); otherwise the frame waits in sendq for
// sendLoop, which sends what queued up while Send was busy. A caller inside
// Send cannot give up until Send returns: at once, unless the service has
// stopped reading this stream (gRPC flow control), and then until it reads
// again or the stream ends; callers whose frames are queued can give up at
// any time. A frame never overtakes one queued before it: a caller sends
// its own only while nothing is queued or held by the sender (unsent).
// One goroutine owns Recv (recvLoop).
type clientStream struct {
	inst      *instance
	conn      *conn
	cs        grpc.BidiStreamingClient[socketv1.ConnectRequest, socketv1.ConnectResponse]
	cancel    context.CancelFunc // aborts the gRPC stream
	sendMu    sync.Mutex         // guards cs.Send and cs.CloseSend
	sendq     chan outgoing
	unsent    atomic.Int64  // frames put in sendq (or about to be) and not yet sent
	described chan struct{} // closed when the stream's Describe is over
	topics    topicFrames   // (un)subscribe frames to send (topics.go)

	inFlight atomic.Int64 // len(pending), for pick without the lock
	heard    atomic.Bool  // a frame arrived since the last heartbeat

	// state changes only under mu (see setState); pick reads it without.
	state atomic.Int32 // a streamState

	nextID atomic.Uint64 // the last request id used

	mu        sync.Mutex       // guards state changes, pending, changed, endErr, expiry, expiresAt
	pending   map[uint64]*call // requests waiting for an answer
	changed   chan struct{}    // closed (and replaced) when state changes or, while draining, a queued request leaves
	endErr    error            // why the stream ended, once it has
	expiry    *time.Timer      // runs expire; made by the first request with a deadline
	expiresAt time.Time        // when expiry fires; zero: not set
}

// outgoing is a frame for the sender: a request encoded by its caller
// (msg), or a control frame the sender encodes (frame). call is nil for
// control frames.
type outgoing struct {
	msg   *wire.Frame
	frame *socketv1.ConnectRequest
	call  *call
}

// call is one request waiting on a stream.
type call struct {
	state    atomic.Int32 // callQueued, callSent or callAbandoned
	done     chan result  // receives exactly one result
	deadline time.Time    // when expire fails it; zero: never
}

const (
	callQueued int32 = iota
	callSent
	callAbandoned
)

type result struct {
	resp *socketv1.Response
	err  error
}

// lostError is a request the stream lost; sent says whether it may have
// reached the service.
type lostError struct {
	err  *status.Error
	sent bool
}

func (e *lostError) Error() string { return e.err.Error() }
func (e *lostError) Unwrap() error { return e.err }

func (st *clientStream) loadState() streamState { return streamState(st.state.Load()) }

// usable reports whether the stream takes new requests.
func (st *clientStream) usable() bool { return st.loadState() == streamOpen }

// setState moves the stream to s and wakes whoever waits on changed.
// Called with mu held.
func (st *clientStream) setState(s streamState) {
	st.state.Store(int32(s))
	st.notify()
}

// notify wakes whoever waits on changed. Called with mu held.
func (st *clientStream) notify() {
	close(st.changed)
	st.changed = make(chan struct{})
}

// observe returns the stream's state and a channel closed at its next
// change.
func (st *clientStream) observe() (streamState, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.loadState(), st.changed
}

// awaitEnd returns once the stream has ended.
func (st *clientStream) awaitEnd() {
	for {
		s, changed := st.observe()
		if s >= streamDrained {
			return
		}
		<-changed
	}
}

// do sends one request on the stream and waits for its answer, or for the
// stream's expiry at its deadline (expire: WithDeadline needs no timer).
func (st *clientStream) do(ctx context.Context, req *socketv1.Request) (*socketv1.Response, error) {
	id := st.nextID.Add(1)
	req.Id = id
	// Encoded here, before it is registered: a frame that cannot be sent
	// fails this request alone (see encodeFrame).
	msg, err := wire.Encode(wire.RequestFrame(req), st.inst.c.cfg.maxFrame)
	if err != nil {
		return nil, status.Errorf(status.CodeInvalidArgument, "the request cannot be sent: %s", wire.Problem(err)).WithCause(err)
	}
	ended, parentEnded := deadline.WaitOn(ctx)
	c := &call{done: make(chan result, 1)}
	c.deadline, _ = ctx.Deadline()
	st.mu.Lock()
	if st.loadState() != streamOpen {
		st.mu.Unlock()
		return nil, &lostError{err: errStreamClosing}
	}
	st.pending[id] = c
	st.inFlight.Add(1)
	st.expireByLocked(c.deadline)
	var changed <-chan struct{} = st.changed
	st.mu.Unlock()

	o := outgoing{msg: msg, call: c}
	queued := false
	if st.unsent.Load() == 0 && st.sendMu.TryLock() {
		if st.unsent.Load() == 0 {
			// Send is free and nothing waits before this frame: send it
			// here rather than wake the sender. A failed Send ends the
			// stream: Recv reports why and the receive loop fails every
			// pending call, this one too.
			_ = st.sendLocked(o)
			queued = true
		}
		st.sendMu.Unlock()
	}
	if !queued {
		st.unsent.Add(1)
	}
	for !queued {
		select {
		case st.sendq <- o:
			queued = true
		case r := <-c.done: // expired, or the stream ended
			st.unsent.Add(-1)
			return r.resp, r.err
		case <-ended:
			st.unsent.Add(-1)
			st.abandon(id, c, false)
			return nil, status.AsError(ctx.Err())
		case <-parentEnded:
			st.unsent.Add(-1)
			st.abandon(id, c, false)
			return nil, status.AsError(ctx.Err())
		case <-changed:
			var s streamState
			// A drain still sends what was registered; an ended stream
			// has failed the request already.
			if s, changed = st.observe(); s >= streamDrained {
				st.unsent.Add(-1)
				queued = true
			}
		}
	}
	select {
	case r := <-c.done:
		return r.resp, r.err
	case <-ended:
	case <-parentEnded:
	}
	e := status.AsError(ctx.Err())
	if st.abandon(id, c, !errors.Is(ctx.Err(), context.DeadlineExceeded)) {
		// It went out: the action may run (or have run) all the same.
		e = e.WithDetails(map[string]any{wire.DetailReason: wire.ReasonOutcomeUnknown})
	}
	return nil, e
}

// expireByLocked makes sure the stream's expiry runs by the deadline at (a
// request's; zero: none). Called with mu held.
func (st *clientStream) expireByLocked(at time.Time) {
	if at.IsZero() || (!st.expiresAt.IsZero() && !at.Before(st.expiresAt)) {
		return
	}
	st.expiresAt = at
	if st.expiry == nil {
		st.expiry = time.AfterFunc(time.Until(at), st.expire)
		return
	}
	st.expiry.Reset(time.Until(at))
}

// expire fails every request whose deadline has passed with
// DEADLINE_EXCEEDED, as its context would (marked outcome unknown when it
// went out; no cancel frame: the service has the deadline too), and sets
// the next expiry by the earliest deadline left. One timer per stream
// runs it, in place of one per request.
func (st *clientStream) expire() {
	now := time.Now()
	var expired []*call
	st.mu.Lock()
	next := time.Time{}
	for id, c := range st.pending {
		switch {
		case c.deadline.IsZero():
		case !c.deadline.After(now):
			delete(st.pending, id)
			st.inFlight.Add(-1)
			expired = append(expired, c)
		case next.IsZero() || c.deadline.Before(next):
			next = c.deadline
		}
	}
	st.expiresAt = time.Time{}
	st.expireByLocked(next)
	if len(expired) > 0 && st.loadState() == streamDraining {
		st.notify()
	}
	st.mu.Unlock()
	for _, c := range expired {
		e := status.AsError(context.DeadlineExceeded)
		if !c.state.CompareAndSwap(callQueued, callAbandoned) {
			e = e.WithDetails(map[string]any{wire.DetailReason: wire.ReasonOutcomeUnknown})
		}
		c.done <- result{err: e}
	}
}

// abandon withdraws a request whose caller gave up. If it already went
// out and notify is set, a cancel frame tells the service to stop it (on a
// deadline the service's own copy of the deadline stops it).
// It reports whether the request had been sent.
func (st *clientStream) abandon(id uint64, c *call, notify bool) (sent bool) {
	if st.take(id) == nil {
		return true // answered or failed meanwhile
	}
	if c.state.CompareAndSwap(callQueued, callAbandoned) {
		return false // never sent: the sender will skip it
	}
	if !notify {
		return true
	}
	cancel := outgoing{frame: &socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Cancel{Cancel: &socketv1.Cancel{Id: id}}}}
	st.unsent.Add(1)
	select {
	case st.sendq <- cancel:
	default: // queue full: the service's deadline stops it instead
		st.unsent.Add(-1)
	}
	return true
}

// take removes a pending request and returns it, nil when it was no longer
// there. While the stream drains, it wakes the sender, which may be
// waiting for that request before it half-closes.
func (st *clientStream) take(id uint64) *call {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.pending[id]
	if c == nil {
		return nil
	}
	delete(st.pending, id)
	st.inFlight.Add(-1)
	if st.loadState() == streamDraining {
		st.notify()
	}
	return c
}

// sendLoop sends the frames queued while Send was busy, and cancel frames.
// Once the stream drains it half-closes when every registered request went
// out.
func (st *clientStream) sendLoop(ctx context.Context) {
	var changed <-chan struct{}
	for {
		if changed == nil {
			st.mu.Lock()
			changed = st.changed
			flushed := st.loadState() == streamDraining && len(st.sendq) == 0 && !st.queuedLocked()
			st.mu.Unlock()
			if flushed {
				// Callers send only requests registered while the
				// stream was open, and none is left unsent.
				st.sendMu.Lock()
				_ = st.cs.CloseSend()
				st.sendMu.Unlock()
				return
			}
		}
		select {
		case o := <-st.sendq:
			st.sendMu.Lock()
			err := st.sendLocked(o)
			st.unsent.Add(-1)
			// Send what queued up meanwhile without letting go of Send.
			for more := err == nil; more; {
				select {
				case o := <-st.sendq:
					err = st.sendLocked(o)
					st.unsent.Add(-1)
					more = err == nil
				default:
					more = false
				}
			}
			st.sendMu.Unlock()
			if err != nil {
				return // Recv reports why
			}
			changed = nil // look whether that was the last one
		case <-changed:
			changed = nil
		case <-ctx.Done():
			return
		}
	}
}

// sendLocked sends o unless its caller abandoned it first. While the stream
// drains, it wakes the sender, which half-closes once the last registered
// request went out. Called with sendMu held.
func (st *clientStream) sendLocked(o outgoing) error {
	if o.call != nil && !o.call.state.CompareAndSwap(callQueued, callSent) {
		return nil // abandoned before it went out
	}
	msg := o.msg
	if msg == nil {
		var err error
		if msg, err = wire.Encode(o.frame, st.inst.c.cfg.maxFrame); err != nil {
			// Control frames carry what the client checked before
			// queueing them; one that still fails is dropped, never
			// handed to gRPC, which would end the stream.
			st.inst.c.cfg.logger.Error("socket: a frame could not be encoded", "target", st.inst.c.pool.target, "error", err)
			return nil
		}
	}
	err := st.cs.SendMsg(msg)
	if o.call != nil && st.loadState() == streamDraining {
		st.mu.Lock()
		st.notify()
		st.mu.Unlock()
	}
	return err
}

// queuedLocked reports whether a registered request has not gone out yet.
// Called with mu held.
func (st *clientStream) queuedLocked() bool {
	for _, c := range st.pending {
		if c.state.Load() == callQueued {
			return true
		}
	}
	return false
}

// recvLoop owns Recv and delivers answers to their callers.
func (st *clientStream) recvLoop() {
	for {
		f, err := st.cs.Recv()
		if err != nil {
			st.fail(err)
			st.inst.c.events.streamEnded(st)
			return
		}
		st.heard.Store(true)
		switch k := f.GetFrame().(type) {
		case *socketv1.ConnectResponse_Response:
			if c := st.take(k.Response.GetId()); c != nil {
				c.done <- result{resp: k.Response}
			}
		case *socketv1.ConnectResponse_Drain:
			st.markDraining()
		case *socketv1.ConnectResponse_Event:
			st.inst.c.events.onEvent(st, k.Event)
		case *socketv1.ConnectResponse_Subscribed:
			st.inst.c.events.onSubscribed(st, k.Subscribed)
		}
	}
}

// markDraining stops new requests on the stream and lets the sender
// half-close once what is registered went out.
func (st *clientStream) markDraining() {
	st.mu.Lock()
	if st.loadState() == streamOpen {
		st.setState(streamDraining)
	}
	st.mu.Unlock()
}

// fail ends the stream: every pending request gets UNAVAILABLE, marked
// with whether it was sent.
func (st *clientStream) fail(err error) {
	cause := status.FromGRPC(err)
	if errors.Is(err, io.EOF) {
		cause = status.Errorf(status.CodeUnavailable, "the stream ended").WithCause(err)
	}
	st.mu.Lock()
	end := streamBroken
	if st.loadState() == streamDraining {
		end = streamDrained
	}
	st.endErr = cause
	pending := st.pending
	st.pending = map[uint64]*call{}
	st.inFlight.Store(0)
	st.setState(end)
	if st.expiry != nil {
		st.expiry.Stop()
	}
	st.mu.Unlock()
	st.cancel()
	// Off the pick list before the callers retry, so they wait for a new
	// stream instead of finding this one again.
	st.inst.cur.CompareAndSwap(st, nil)
	for _, c := range pending {
		sent := !c.state.CompareAndSwap(callQueued, callAbandoned)
		lost := status.Errorf(status.CodeUnavailable, "the stream to the service broke before the answer")
		if sent {
			// It may have run: callers must not assume either outcome.
			lost = lost.WithDetails(map[string]any{wire.DetailReason: wire.ReasonOutcomeUnknown})
		}
		lost = lost.WithCause(cause)
		c.done <- result{err: &lostError{err: lost, sent: sent}}
	}
}

// err returns why the stream ended, nil while it has not.
func (st *clientStream) err() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.endErr
}
