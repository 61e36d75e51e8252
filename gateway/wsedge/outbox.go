package wsedge

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/streamgate/streamgate/gateway/observe"
)

// outbox is a socket's send queue and its writer. Answers wait for room
// (the client's pace slows the socket); events never wait (a topic's
// other watchers would wait too): a client that falls behind on either
// is cut off. One goroutine, writeLoop, writes the frames in order.
type outbox struct {
	ws           *websocket.Conn
	ctx          context.Context // the socket's: ends when it is over
	closer       *closer
	report       func(observe.ConnEvent)
	limit        int           // Limits.SendQueue: answers and events each
	backlogLimit int           // Limits.Backlog
	stall        time.Duration // Limits.Stall

	queue   chan queued   // frames for writeLoop: limit answers and limit events
	answers chan struct{} // one per answer in queue (or being written): answer waits for room here
	events  atomic.Int64  // events in queue (or being written); event cuts off past limit
	written atomic.Uint64 // frames written: a waiting answer tells a slow client from one that stopped
	room    chan struct{} // a token after each event written: a paced event waits for room here
	backlog atomic.Int64  // events held by the socket's subscriptions (Limits.Backlog)
	flush   chan struct{} // closed: writeLoop writes what is queued, then ends
	done    chan struct{} // closed when writeLoop ends
}

// queued is a frame waiting for writeLoop: an answer (it holds a place in
// outbox.answers) or an event (counted in outbox.events).
type queued struct {
	frame  []byte
	answer bool
}

// newOutbox makes the send queue of the socket ws, whose context is ctx.
func newOutbox(ctx context.Context, ws *websocket.Conn, limits Limits, cl *closer, report func(observe.ConnEvent)) *outbox {
	return &outbox{
		ws: ws, ctx: ctx, closer: cl, report: report, limit: limits.SendQueue, stall: limits.Stall, backlogLimit: limits.Backlog,
		queue:   make(chan queued, 2*limits.SendQueue),
		answers: make(chan struct{}, limits.SendQueue),
		room:    make(chan struct{}, 1),
		flush:   make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// answer queues an answer frame for the client, waiting while SendQueue
// answers wait already: the reader and the requests then go at the pace
// the client reads, and a client that sends faster than it reads is slowed
// (TCP tells it), never cut off. A client that takes no frame at all for
// Stall meanwhile does not read: it is cut off (4408). Frames for a
// socket that is closing are dropped.
func (o *outbox) answer(frame []byte) {
	if o.closer.asked() || o.ctx.Err() != nil {
		return // closing, or over: nobody writes the queue any more
	}
	select {
	case o.answers <- struct{}{}:
	default:
		if !o.awaitRoom() {
			return
		}
	}
	o.queue <- queued{frame: frame, answer: true} // never waits: it has room for SendQueue of each kind
}

// awaitRoom waits for room for an answer; false when the socket closes
// first, or the client took no frame for Stall (it is cut off).
func (o *outbox) awaitRoom() bool {
	st := o.newStall()
	defer st.timer.Stop()
	for {
		select {
		case o.answers <- struct{}{}:
			return true
		case <-st.timer.C:
			if st.stalled() {
				return false
			}
		case <-o.closer.closed:
			return false
		case <-o.ctx.Done():
			return false
		}
	}
}

// event queues an event frame for the client without ever waiting (the
// topic's other watchers wait for it): a client with SendQueue events
// waiting is cut off (4408). Frames for a socket that is closing are
// dropped.
func (o *outbox) event(frame []byte) {
	if o.closer.asked() || o.ctx.Err() != nil {
		return
	}
	if o.events.Add(1) > int64(o.limit) {
		o.events.Add(-1)
		o.cutOff()
		return
	}
	o.queue <- queued{frame: frame} // never waits: see answer
}

// eventPaced queues an event frame held back for the client (a resumed
// subscription's missed events), waiting while half of SendQueue events
// wait already, so the other half stays for live events. False when the
// socket closes first, or the client took no frame for Stall (it is cut
// off).
func (o *outbox) eventPaced(frame []byte) bool {
	st := o.newStall()
	defer st.timer.Stop()
	for {
		if o.closer.asked() || o.ctx.Err() != nil {
			return false
		}
		if o.events.Add(1) <= int64(max(o.limit/2, 1)) {
			o.queue <- queued{frame: frame} // never waits: see answer
			return true
		}
		o.events.Add(-1)
		select {
		case <-o.room: // an event was written: try again
		case <-st.timer.C:
			if st.stalled() {
				return false
			}
		case <-o.closer.closed:
			return false
		case <-o.ctx.Done():
			return false
		}
	}
}

// stall tells a client that takes no frame for Stall, while a frame
// waits for room, from a slow one.
type stall struct {
	o     *outbox
	timer *time.Timer
	seen  uint64 // frames written when the timer last started
}

// newStall starts watching for a stall.
func (o *outbox) newStall() *stall {
	return &stall{o: o, timer: time.NewTimer(o.stall), seen: o.written.Load()}
}

// stalled is called when the timer fires: true (and the client cut off)
// when no frame was written since it started, else it starts again.
func (s *stall) stalled() bool {
	if now := s.o.written.Load(); now != s.seen {
		s.seen = now // slow, but reading
		s.timer.Reset(s.o.stall)
		return false
	}
	s.o.cutOff()
	return true
}

// cutOff closes the socket of a client that does not read (4408).
//
// The writer may be stuck writing to the client (its buffers are full):
// the close frame then goes out once the client reads again, or, if it
// does not within 5s, the connection is dropped without one.
func (o *outbox) cutOff() {
	if o.ctx.Err() == nil && o.closer.ask(closeRequest{code: closeTooSlow, reason: socketQueueFullMessage}) {
		o.report(observe.ConnEvent{Kind: observe.SocketCutOff})
	}
}

// writeLoop writes queued frames in order until the socket is over, or,
// once flush is closed, until the queue is empty.
func (o *outbox) writeLoop() {
	defer close(o.done)
	for {
		select {
		case q := <-o.queue:
			if !o.write(q) {
				return
			}
		case <-o.flush:
			for {
				select {
				case q := <-o.queue:
					if !o.write(q) {
						return
					}
				default:
					return
				}
			}
		case <-o.ctx.Done():
			return
		}
	}
}

// write writes one frame and frees its place in the queue; false when
// the connection failed (it is then closed, and the reader ends too).
func (o *outbox) write(q queued) bool {
	err := o.ws.Write(context.Background(), websocket.MessageText, q.frame)
	if q.answer {
		<-o.answers
	} else {
		o.events.Add(-1)
		select {
		case o.room <- struct{}{}:
		default:
		}
	}
	if err != nil {
		_ = o.ws.CloseNow() // the reader ends too
		return false
	}
	o.written.Add(1)
	o.report(observe.ConnEvent{Kind: observe.FrameSent})
	return true
}

// flushWithin lets writeLoop write what is queued and waits for it to
// end, at most limit.
func (o *outbox) flushWithin(limit time.Duration) {
	close(o.flush)
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-o.done:
	case <-timer.C:
	}
}
