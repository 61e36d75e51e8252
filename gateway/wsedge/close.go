package wsedge

import (
	"context"
	"sync/atomic"

	"github.com/coder/websocket"
)

// closer closes a socket once, with the first close asked for: its own
// goroutine, loop, sends the close frame, so that whoever asks (the
// reader, a request, a topic's delivery) never waits for the client.
type closer struct {
	closing  atomic.Bool       // a close was asked for: frames are dropped, not queued
	closed   chan struct{}     // closed with closing's first swap: answers waiting for room give up
	requests chan closeRequest // to loop; buffered 1
	done     chan struct{}     // closed when loop ends
}

// closeRequest is a close code and reason for closer.loop; flush writes
// the frames queued first.
type closeRequest struct {
	code   websocket.StatusCode
	reason string
	flush  bool
}

// newCloser makes a socket's closer; loop runs it.
func newCloser() *closer {
	return &closer{
		closed:   make(chan struct{}),
		requests: make(chan closeRequest, 1),
		done:     make(chan struct{}),
	}
}

// asked reports whether a close was asked for.
func (cl *closer) asked() bool { return cl.closing.Load() }

// ask asks loop to close the socket; only the first call counts (it
// reports whether it was the first).
func (cl *closer) ask(req closeRequest) bool {
	if cl.closing.Swap(true) {
		return false
	}
	close(cl.closed)
	cl.requests <- req // buffered 1, and only the first call sends
	return true
}

// loop closes ws with the first close asked for, after out's queued
// frames when it says flush. A socket that ends (ctx) without one (the
// client closed it) needs none.
func (cl *closer) loop(ctx context.Context, ws *websocket.Conn, out *outbox) {
	defer close(cl.done)
	var req closeRequest
	select {
	case req = <-cl.requests:
	case <-ctx.Done():
		select {
		case req = <-cl.requests:
		default:
			return
		}
	}
	if req.flush {
		out.flushWithin(socketFlushLimit)
	}
	_ = ws.Close(req.code, req.reason)
}
