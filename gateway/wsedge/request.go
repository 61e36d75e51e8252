package wsedge

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/streamgate/streamgate/services/socket"
)

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
	refuse := func(status int, e *socket.Error) {
		c.send(responseFrame(f.ID, failed(status, e)))
	}
	select {
	case c.slots <- struct{}{}:
	default:
		refuse(http.StatusTooManyRequests, socket.Errorf(socket.CodeResourceExhausted, "more than %d requests in flight on this socket", c.limits.InFlight).
			WithDetails(map[string]any{socket.DetailReason: reasonTooManyInFlight}))
		return false
	}
	c.mu.Lock()
	_, dup := c.inflight[f.key]
	if c.draining || dup {
		c.mu.Unlock()
		<-c.slots
		if dup {
			refuse(http.StatusBadRequest, socket.Errorf(socket.CodeInvalidArgument, "a request with id %s is in flight on this socket", f.key).
				WithDetails(map[string]any{socket.DetailReason: reasonDuplicateID}))
			return false
		}
		refuse(http.StatusServiceUnavailable, socket.Errorf(socket.CodeUnavailable, "the gateway is draining: reconnect").
			WithDetails(map[string]any{socket.DetailReason: socket.ReasonDraining}))
		return false
	}
	ctx, cancel := context.WithCancel(c.ctx)
	c.inflight[f.key] = cancel
	c.handlers.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.handlers.Done()
		defer func() {
			cancel()
			c.mu.Lock()
			delete(c.inflight, f.key)
			c.mu.Unlock()
			<-c.slots
		}()
		a := c.recovered(func() Answer { return serve(ctx) })
		c.send(responseFrame(f.ID, a))
		if answered != nil {
			answered(a)
		}
	}()
	return true
}

// recovered runs serve, turning a panic into an INTERNAL answer.
func (c *wsConn) recovered(serve func() Answer) (a Answer) {
	defer func() {
		if p := recover(); p != nil {
			c.e.logger.Error("gateway: panic serving a socket frame", "panic", p, "version", c.version)
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
		Credentials:    c.credentials(),
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
