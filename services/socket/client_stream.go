package socket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// instance is one resolved address of the service. Its loop keeps one
// stream open that takes new requests, replacing it with backoff when it
// breaks and at once when the service drains it.
type instance struct {
	c      *Client
	addr   string
	ctx    context.Context // ends when the instance is retired or the client closes
	cancel context.CancelFunc

	cur atomic.Pointer[clientStream] // the stream taking new requests; nil when none

	mu        sync.Mutex // guards state, lastErr, failed, everReady, retryAt
	state     connectivity.State
	lastErr   error
	failed    int       // failed attempts since the last ready stream
	everReady bool      // a stream was ready once
	retryAt   time.Time // when the next attempt starts, while in backoff
}

// conn is one gRPC connection to an instance. After a failed attempt the
// instance dials a fresh one, so that gRPC's own reconnect backoff never
// stacks under the instance's (which WithBackoff bounds).
type conn struct {
	cc      *grpc.ClientConn
	stub    socketv1.SocketServiceClient
	streams sync.WaitGroup // streams on cc still answering
}

func (c *Client) newConn(addr string) (*conn, error) {
	cc, err := grpc.NewClient(addr, c.dialOptions()...)
	if err != nil {
		return nil, fmt.Errorf("socket: dial %s: %w", addr, err)
	}
	return &conn{cc: cc, stub: socketv1.NewSocketServiceClient(cc)}, nil
}

// retire closes a connection once its streams (a drained one may still
// answer) are over.
func (c *Client) retire(cn *conn) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		cn.streams.Wait()
		_ = cn.cc.Close()
	}()
}

func (c *Client) newInstance(addr string) (*instance, error) {
	cn, err := c.newConn(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(c.ctx)
	inst := &instance{c: c, addr: addr, ctx: ctx, cancel: cancel, state: connectivity.Connecting}
	c.wg.Add(1)
	go inst.loop(cn)
	return inst, nil
}

// stop retires the instance: no new requests; the loop drains its stream
// and closes the connection.
func (inst *instance) stop() { inst.cancel() }

func (inst *instance) snapshot() InstanceState {
	s := InstanceState{Addr: inst.addr}
	inst.mu.Lock()
	s.State, s.LastError, s.Failures = inst.state, inst.lastErr, inst.failed
	inst.mu.Unlock()
	if st := inst.cur.Load(); st != nil {
		s.InFlight = int(st.inFlight.Load())
	}
	return s
}

func (inst *instance) setState(s connectivity.State, err error) {
	inst.mu.Lock()
	inst.state = s
	if err != nil {
		inst.lastErr = err
	}
	if s == connectivity.Ready {
		inst.failed, inst.everReady = 0, true
	}
	inst.mu.Unlock()
	inst.c.notifyChange()
}

// backOff records a failure and waits the backoff delay before the next
// attempt; it reports false when the instance is retired meanwhile.
func (inst *instance) backOff(err error, failures int, attempt bool) bool {
	d := inst.c.backoff(failures)
	inst.mu.Lock()
	inst.state, inst.retryAt = connectivity.TransientFailure, time.Now().Add(d)
	if err != nil {
		inst.lastErr = err
	}
	if attempt {
		inst.failed++
	}
	inst.mu.Unlock()
	inst.c.notifyChange()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-inst.ctx.Done():
		return false
	}
}

// readiness says whether the instance's first attempt is still under way
// and, when it is failing, when its next attempt starts.
func (inst *instance) readiness() (first bool, state connectivity.State, retryAt time.Time) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return !inst.everReady && inst.failed == 0 && inst.state == connectivity.Connecting, inst.state, inst.retryAt
}

func (inst *instance) loop(cn *conn) {
	defer inst.c.wg.Done()
	defer func() {
		if cn != nil {
			inst.c.retire(cn)
		}
	}()
	failures := 0
	for {
		if cn == nil {
			var err error
			if cn, err = inst.c.newConn(inst.addr); err != nil {
				if !inst.backOff(err, failures, true) {
					return
				}
				failures++
				continue
			}
		}
		inst.setState(connectivity.Connecting, nil)
		st, err := inst.open(cn)
		if err != nil {
			if inst.ctx.Err() != nil {
				return
			}
			inst.c.retire(cn)
			cn = nil
			inst.c.resolveNow()
			if !inst.backOff(err, failures, true) {
				return
			}
			failures++
			continue
		}
		inst.cur.Store(st)
		inst.setState(connectivity.Ready, nil)
		opened := time.Now()
		inst.watch(cn, st)
		inst.cur.CompareAndSwap(st, nil)
		if inst.ctx.Err() != nil {
			inst.setState(connectivity.Shutdown, nil)
			return
		}
		select {
		case <-st.drained:
			failures = 0 // the service asked us to move: reconnect at once
			continue
		default:
		}
		// The stream broke: its connection is done for.
		inst.c.retire(cn)
		cn = nil
		if time.Since(opened) > inst.c.cfg.backoffMax {
			failures = 0
		}
		if !inst.backOff(st.err(), failures, false) {
			return
		}
		failures++
	}
}

// watch returns when the stream drains, breaks or the instance is
// retired. A stream that has been silent for a heartbeat interval is
// probed; one whose connection does not answer the probe is ended, so a
// black-holed connection fails within heartbeatInterval+heartbeatTimeout.
func (inst *instance) watch(cn *conn, st *clientStream) {
	beat := time.NewTicker(heartbeatInterval)
	defer beat.Stop()
	for {
		select {
		case <-st.drained:
			return
		case <-st.done:
			return
		case <-inst.ctx.Done():
			st.markDraining()
			return
		case <-beat.C:
			if st.heard.Swap(false) {
				continue
			}
			if err := probe(inst.ctx, cn); err != nil && inst.ctx.Err() == nil {
				st.cancel() // the receiver fails the stream's requests
				<-st.done
				return
			}
		}
	}
}

// resolveNow asks the resolver to look again (an instance may have moved).
func (c *Client) resolveNow() {
	if res := c.res.Load(); res != nil {
		(*res).ResolveNow(resolver.ResolveNowOptions{})
	}
}

// open starts a stream on cn and waits until the service accepts it.
func (inst *instance) open(cn *conn) (*clientStream, error) {
	c := inst.c
	// The stream outlives the instance's retirement (it drains), but
	// opening it is bounded by the connect timeout and the retirement.
	ctx, cancel := context.WithCancel(inst.c.ctx)
	timer := time.AfterFunc(c.cfg.connectTimeout, cancel)
	unwatch := context.AfterFunc(inst.ctx, cancel)
	cs, err := cn.stub.Connect(c.outgoingContext(ctx))
	if err == nil {
		var md metadata.MD
		md, err = cs.Header()
		if err == nil && len(md.Get(MetadataInstance)) == 0 {
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
		return nil, FromStatus(err)
	}
	dctx, dcancel := context.WithTimeout(inst.ctx, c.cfg.connectTimeout)
	if d, err := cn.stub.Describe(c.outgoingContext(dctx), &socketv1.DescribeRequest{}); err == nil {
		c.learn(d)
	}
	dcancel()
	st := &clientStream{
		inst:    inst,
		conn:    cn,
		cs:      cs,
		cancel:  cancel,
		sendq:   make(chan outgoing, 256),
		pending: map[uint64]*call{},
		drained: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		sent:    make(chan struct{}),
	}
	cn.streams.Add(2)
	c.wg.Add(2)
	go func() { defer c.wg.Done(); defer cn.streams.Done(); st.sendLoop(ctx) }()
	go func() { defer c.wg.Done(); defer cn.streams.Done(); st.recvLoop() }()
	return st, nil
}

// clientStream is one open socket on the caller side. One goroutine owns
// Send (sendLoop), one owns Recv (recvLoop).
type clientStream struct {
	inst   *instance
	conn   *conn
	cs     grpc.BidiStreamingClient[socketv1.ConnectRequest, socketv1.ConnectResponse]
	cancel context.CancelFunc // aborts the gRPC stream

	sendq chan outgoing
	sent  chan struct{} // closed when the sender half-closed or stopped

	inFlight atomic.Int64 // requests waiting for an answer
	heard    atomic.Bool  // a frame arrived since the last heartbeat
	nextID   atomic.Uint64
	broken   atomic.Bool   // the stream ended
	draining atomic.Bool   // the stream takes no new requests
	kick     chan struct{} // wakes the sender to re-check a drained stream
	drained  chan struct{} // closed when draining starts
	done     chan struct{} // closed when the stream is over

	mu       sync.Mutex // guards pending, unsent, broken; draining changes under it
	pending  map[uint64]*call
	unsent   int   // requests registered but not yet taken by the sender
	brokeErr error // why the stream ended; new requests are refused after
}

// outgoing is a frame for the sender; call is nil for cancel frames.
type outgoing struct {
	frame *socketv1.ConnectRequest
	call  *call
}

// call is one request waiting on a stream.
type call struct {
	state atomic.Int32 // callQueued, callSent or callAbandoned
	done  chan result  // receives exactly one result
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
	err  *Error
	sent bool
}

func (e *lostError) Error() string { return e.err.Error() }
func (e *lostError) Unwrap() error { return e.err }

// do sends one request on the stream and waits for its answer.
func (st *clientStream) do(ctx context.Context, req *socketv1.Request) (*socketv1.Response, error) {
	c := &call{done: make(chan result, 1)}
	st.mu.Lock()
	if st.brokeErr != nil || st.draining.Load() {
		st.mu.Unlock()
		return nil, &lostError{err: errStreamClosing}
	}
	id := st.nextID.Add(1)
	req.Id = id
	st.pending[id] = c
	st.unsent++
	st.inFlight.Add(1)
	st.mu.Unlock()

	select {
	case st.sendq <- outgoing{frame: &socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: req}}, call: c}:
	case <-ctx.Done():
		st.unqueue()
		st.abandon(id, c, false)
		return nil, AsError(ctx.Err())
	case <-st.sent:
		// The sender is gone; the pending request fails with the stream.
		st.unqueue()
	}
	select {
	case r := <-c.done:
		return r.resp, r.err
	case <-ctx.Done():
		e := AsError(ctx.Err())
		if st.abandon(id, c, !errors.Is(ctx.Err(), context.DeadlineExceeded)) {
			// It went out: the action may run (or have run) all the same.
			e = e.WithDetails(map[string]any{DetailReason: ReasonOutcomeUnknown})
		}
		return nil, e
	}
}

// abandon withdraws a request whose caller gave up. If it already went
// out and notify is set, a cancel frame tells the service to stop it (on a
// deadline the service's own copy of the deadline stops it).
// It reports whether the request had been sent.
func (st *clientStream) abandon(id uint64, c *call, notify bool) (sent bool) {
	if !st.take(id) {
		return true // answered or failed meanwhile
	}
	if c.state.CompareAndSwap(callQueued, callAbandoned) {
		return false // never sent: the sender will skip it
	}
	if !notify {
		return true
	}
	cancel := outgoing{frame: &socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Cancel{Cancel: &socketv1.Cancel{Id: id}}}}
	select {
	case st.sendq <- cancel:
	default: // queue full: the service's deadline stops it instead
	}
	return true
}

// take removes a pending request; it reports whether it was still there.
func (st *clientStream) take(id uint64) bool {
	st.mu.Lock()
	_, ok := st.pending[id]
	delete(st.pending, id)
	st.mu.Unlock()
	if ok {
		st.inFlight.Add(-1)
	}
	return ok
}

// sendLoop owns Send. After a drain it half-closes once every registered
// request went out.
func (st *clientStream) sendLoop(ctx context.Context) {
	defer close(st.sent)
	drained := st.drained
	for {
		select {
		case o := <-st.sendq:
			if o.call != nil {
				st.mu.Lock()
				st.unsent--
				st.mu.Unlock()
				if !o.call.state.CompareAndSwap(callQueued, callSent) {
					continue
				}
			}
			if err := st.cs.Send(o.frame); err != nil {
				return // Recv reports why
			}
		case <-drained:
			drained = nil
		case <-st.kick:
		case <-ctx.Done():
			return
		}
		if drained == nil && st.drainedAndFlushed() {
			_ = st.cs.CloseSend()
			return
		}
	}
}

// usable reports whether the stream takes new requests.
func (st *clientStream) usable() bool {
	return !st.draining.Load() && !st.broken.Load()
}

// unqueue forgets a registered request that will not reach the sender, and
// wakes the sender in case it waits for it to half-close.
func (st *clientStream) unqueue() {
	st.mu.Lock()
	st.unsent--
	st.mu.Unlock()
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

func (st *clientStream) drainedAndFlushed() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.unsent == 0 && len(st.sendq) == 0
}

// recvLoop owns Recv and delivers answers to their callers.
func (st *clientStream) recvLoop() {
	for {
		f, err := st.cs.Recv()
		if err != nil {
			st.fail(err)
			return
		}
		st.heard.Store(true)
		switch k := f.GetFrame().(type) {
		case *socketv1.ConnectResponse_Response:
			id := k.Response.GetId()
			st.mu.Lock()
			c := st.pending[id]
			delete(st.pending, id)
			st.mu.Unlock()
			if c != nil {
				st.inFlight.Add(-1)
				c.done <- result{resp: k.Response}
			}
		case *socketv1.ConnectResponse_Drain:
			st.markDraining()
		}
	}
}

// markDraining stops new requests on the stream and lets the sender
// half-close once what is queued went out.
func (st *clientStream) markDraining() {
	st.mu.Lock()
	first := !st.draining.Swap(true)
	st.mu.Unlock()
	if first {
		close(st.drained)
	}
}

// fail ends the stream: every pending request gets UNAVAILABLE, marked
// with whether it was sent.
func (st *clientStream) fail(err error) {
	st.mu.Lock()
	cause := FromStatus(err)
	if errors.Is(err, io.EOF) {
		cause = Errorf(CodeUnavailable, "the stream ended").WithCause(err)
	}
	st.brokeErr = cause
	st.broken.Store(true)
	pending := st.pending
	st.pending = map[uint64]*call{}
	st.mu.Unlock()
	st.cancel()
	// Off the pick list before the callers retry, so they wait for a new
	// stream instead of finding this one again.
	st.inst.cur.CompareAndSwap(st, nil)
	for _, c := range pending {
		st.inFlight.Add(-1)
		sent := !c.state.CompareAndSwap(callQueued, callAbandoned)
		lost := Errorf(CodeUnavailable, "the stream to the service broke before the answer")
		if sent {
			// It may have run: callers must not assume either outcome.
			lost = lost.WithDetails(map[string]any{DetailReason: ReasonOutcomeUnknown})
		}
		lost = lost.WithCause(cause)
		c.done <- result{err: &lostError{err: lost, sent: sent}}
	}
	close(st.done)
}

func (st *clientStream) err() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.brokeErr
}
