package wsedge

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/streamgate/streamgate/services/socket"
)

// inFlight is the frames a socket is serving (requests, subscribes), by
// id, within its bound, and whether it takes more.
type inFlight struct {
	limit int           // Limits.InFlight
	slots chan struct{} // one per frame running

	mu       sync.Mutex                    // guards byID and draining
	byID     map[string]context.CancelFunc // the frames running, by id
	draining bool                          // new frames are refused
	running  sync.WaitGroup                // the frames' goroutines; Add under mu while !draining
}

// newInFlight makes a socket's set of frames in flight, limit at most.
func newInFlight(limit int) *inFlight {
	return &inFlight{limit: limit, slots: make(chan struct{}, limit), byID: map[string]context.CancelFunc{}}
}

// begin admits the frame with id key: it runs in ctx (from parent, ended
// by cancel(key)) and calls end when it is over. A frame over the bound,
// with the id of one running, or that comes while draining is refused
// with the answer refused (its Err set).
func (r *inFlight) begin(parent context.Context, key string) (ctx context.Context, end func(), refused Answer) {
	select {
	case r.slots <- struct{}{}:
	default:
		return nil, nil, failed(http.StatusTooManyRequests, socket.Errorf(socket.CodeResourceExhausted, "more than %d requests in flight on this socket", r.limit).
			WithDetails(map[string]any{socket.DetailReason: reasonTooManyInFlight}))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, dup := r.byID[key]
	switch {
	case dup:
		<-r.slots
		return nil, nil, failed(http.StatusBadRequest, socket.Errorf(socket.CodeInvalidArgument, "a request with id %s is in flight on this socket", key).
			WithDetails(map[string]any{socket.DetailReason: reasonDuplicateID}))
	case r.draining:
		<-r.slots
		return nil, nil, failed(http.StatusServiceUnavailable, socket.Errorf(socket.CodeUnavailable, "the gateway is draining: reconnect").
			WithDetails(map[string]any{socket.DetailReason: socket.ReasonDraining}))
	}
	ctx, cancel := context.WithCancel(parent)
	r.byID[key] = cancel
	r.running.Add(1)
	return ctx, func() {
		cancel()
		r.mu.Lock()
		delete(r.byID, key)
		r.mu.Unlock()
		<-r.slots
		r.running.Done()
	}, Answer{}
}

// cancel cancels the frame with id key, if it runs.
func (r *inFlight) cancel(key string) {
	r.mu.Lock()
	cancel := r.byID[key]
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// refuseNew refuses the frames that come from now on (the drain).
func (r *inFlight) refuseNew() {
	r.mu.Lock()
	r.draining = true
	r.mu.Unlock()
}

// isDraining reports whether new frames are refused.
func (r *inFlight) isDraining() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.draining
}

// wait waits for the frames running to end.
func (r *inFlight) wait() { r.running.Wait() }

// waitUntil waits for the frames running to end, or for ctx to.
func (r *inFlight) waitUntil(ctx context.Context) {
	done := make(chan struct{})
	go func() { r.wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// startRequest runs a request frame in a goroutine of its own (see run).
func (c *wsConn) startRequest(f *clientFrame) {
	_ = c.run(f, func(ctx context.Context) Answer { return c.serveRequest(ctx, f) }, nil)
}

// run serves a frame that is answered by id (a request, a subscribe) in
// a goroutine of its own, within the socket's in-flight bound; its answer
// is queued when it finishes, so answers come back out of order; then
// answered, if not nil, runs. It reports whether serve runs (false: the
// frame was refused with an answer of its own).
func (c *wsConn) run(f *clientFrame, serve func(ctx context.Context) Answer, answered func(Answer)) bool {
	ctx, end, refused := c.requests.begin(c.ctx, f.key)
	if refused.Err != nil {
		c.out.answer(responseFrame(f.ID, refused))
		return false
	}
	go func() {
		defer end()
		a := recovered(c.e.logger, c.version, func() Answer { return serve(ctx) })
		c.out.answer(responseFrame(f.ID, a))
		if answered != nil {
			answered(a)
		}
	}()
	return true
}

// recovered runs serve, turning a panic into an INTERNAL answer (logged
// with the socket's version).
func recovered(log *slog.Logger, version string, serve func() Answer) (a Answer) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("gateway: panic serving a socket frame", "panic", p, "version", version)
			a = failed(http.StatusInternalServerError, socket.Errorf(socket.CodeInternal, "internal error"))
		}
	}()
	return serve()
}

// serveRequest runs one request frame through the core with the
// socket's credentials.
func (c *wsConn) serveRequest(ctx context.Context, f *clientFrame) Answer {
	req := Request{
		Version:        c.version,
		Credentials:    c.creds.get(),
		Method:         f.Method,
		Path:           f.Path,
		Action:         f.Action,
		IdempotencyKey: f.IdempotencyKey,
	}
	if len(f.ResourceID) > 0 && string(f.ResourceID) != "null" {
		_, req.ResourceID, _ = frameID(f.ResourceID)
	}
	if ms, _ := timeoutOf(f.TimeoutMS); ms > 0 {
		req.Timeout = time.Duration(ms) * time.Millisecond
	}
	if b := bytes.TrimSpace(f.Body); len(b) > 0 && string(b) != "null" {
		req.Body = b
	}
	return c.e.core.Call(ctx, req)
}
