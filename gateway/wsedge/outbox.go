package wsedge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/streamgate/streamgate/gateway/observe"
)

// outbox is a socket's send queue and its writer. Answers wait for room
// (the client's pace slows the socket); events never wait (a topic's
// other watchers would wait too). One goroutine, writeLoop, writes the
// frames in order, each batch of what is queued with one write to the
// connection (corkConn).
//
// An event of a topic that may be conflated (the default: each event
// carries the whole object) replaces the topic's previous event while
// that one is still queued, so a slow client holds at most one queued
// event per topic and ends on the latest state; its frame says how many
// it skipped. Any other frame (an answer, a gap marker, an event of a
// resource with conflate: false, a resumed subscription's event) is
// queued as it comes, and a client with SendQueue such events waiting is
// cut off (4408).
type outbox struct {
	ws           *websocket.Conn
	cork         *corkConn       // ws's connection; nil when it cannot be corked (tests)
	ctx          context.Context // the socket's: ends when it is over
	closer       *closer
	report       func(observe.ConnEvent)
	limit        int           // Limits.SendQueue: answers and events each
	backlogLimit int           // Limits.Backlog
	stall        time.Duration // Limits.Stall

	mu      sync.Mutex     // guards queue, slots and writing
	queue   []queued       // frames for writeLoop, in order
	slots   map[string]int // topic → the index in queue of its event that may still be replaced
	writing bool           // writeLoop is writing a batch it took (take to the end of writeBatch): the queue waits on the client
	spare   []queued       // the last batch's array, for the next queue; writeLoop's

	wake    chan struct{} // a token when queue grows: writeLoop takes it
	answers chan struct{} // one per answer in queue (or being written): answer waits for room here
	events  atomic.Int64  // counted events in queue (or being written); event cuts off past limit
	written atomic.Uint64 // frames written: a waiting answer tells a slow client from one that stopped
	room    chan struct{} // a token after each event written: a paced event waits for room here
	backlog atomic.Int64  // events held by the socket's subscriptions (Limits.Backlog)
	flush   chan struct{} // closed: writeLoop writes what is queued, then ends
	done    chan struct{} // closed when writeLoop ends

	scratch []byte // writeLoop's: a conflated event's frame with its skipped count
}

// queued is a frame waiting for writeLoop: an answer (it holds a place in
// outbox.answers), a counted event (in outbox.events), or a conflated
// event (counted nowhere: one per topic at most).
type queued struct {
	frame   []byte
	answer  bool
	counted bool
	// skipped is how many events of the topic this one replaced (a
	// conflated event): its frame goes out with "skipped":N.
	skipped int
	// queuedAt is when a conflated event's slot was queued, and seen the
	// frames written then: a slot replaced after Stall with no frame
	// written meanwhile is a client that does not read.
	queuedAt time.Time
	seen     uint64
}

// newOutbox makes the send queue of the socket ws, whose context is ctx;
// cork is ws's connection (nil: each frame is a write of its own).
func newOutbox(ctx context.Context, ws *websocket.Conn, cork *corkConn, limits Limits, cl *closer, report func(observe.ConnEvent)) *outbox {
	return &outbox{
		ws: ws, cork: cork, ctx: ctx, closer: cl, report: report, limit: limits.SendQueue, stall: limits.Stall, backlogLimit: limits.Backlog,
		wake:    make(chan struct{}, 1),
		answers: make(chan struct{}, limits.SendQueue),
		room:    make(chan struct{}, 1),
		flush:   make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// push queues q, ending topic's slot (a frame queued after an event must
// not be overtaken by a later one replacing it), and wakes writeLoop.
func (o *outbox) push(topic string, q queued) {
	o.mu.Lock()
	if topic != "" {
		delete(o.slots, topic)
	}
	o.queue = append(o.queue, q)
	o.mu.Unlock()
	o.signal()
}

// signal wakes writeLoop.
func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
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
	o.push("", queued{frame: frame, answer: true})
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

// event queues an event frame (or a gap marker) of topic for the client
// without ever waiting (the topic's other watchers wait for it): a client
// with SendQueue such frames waiting is cut off (4408). Frames for a
// socket that is closing are dropped.
func (o *outbox) event(topic string, frame []byte) {
	if o.closer.asked() || o.ctx.Err() != nil {
		return
	}
	if o.events.Add(1) > int64(o.limit) {
		o.events.Add(-1)
		o.cutOff()
		return
	}
	o.push(topic, queued{frame: frame, counted: true})
}

// conflate queues an event frame of topic, a state that makes the
// topic's earlier ones moot, without ever waiting: while the topic's
// previous event is still queued behind a batch writeLoop is writing
// (the client is behind), frame replaces it and counts it skipped. So a
// client that falls behind holds one event per topic, however fast they
// come, and ends on the latest. Events that merely come before writeLoop
// is scheduled are each queued: a client that keeps up gets every state.
// A client that took no frame at all for Stall while its slot waits does
// not read: it is cut off (4408).
func (o *outbox) conflate(topic string, frame []byte, skipped int) {
	if o.closer.asked() || o.ctx.Err() != nil {
		return
	}
	o.mu.Lock()
	if i, ok := o.slots[topic]; ok && o.writing {
		q := &o.queue[i]
		q.frame = frame
		q.skipped += 1 + skipped
		stalled := o.written.Load() == q.seen && time.Since(q.queuedAt) >= o.stall
		o.mu.Unlock()
		o.report(observe.ConnEvent{Kind: observe.EventConflated, States: 1 + skipped})
		if stalled {
			o.cutOff()
		}
		return
	}
	if o.slots == nil {
		o.slots = map[string]int{}
	}
	o.slots[topic] = len(o.queue)
	o.queue = append(o.queue, queued{frame: frame, skipped: skipped, queuedAt: time.Now(), seen: o.written.Load()})
	o.mu.Unlock()
	if skipped > 0 { // conflated on its way here (the hub)
		o.report(observe.ConnEvent{Kind: observe.EventConflated, States: skipped})
	}
	o.signal()
}

// eventPaced queues an event frame of topic held back for the client (a
// resumed subscription's missed events), waiting while half of SendQueue
// events wait already, so the other half stays for live events. False
// when the socket closes first, or the client took no frame for Stall
// (it is cut off).
func (o *outbox) eventPaced(topic string, frame []byte) bool {
	st := o.newStall()
	defer st.timer.Stop()
	for {
		if o.closer.asked() || o.ctx.Err() != nil {
			return false
		}
		if o.events.Add(1) <= int64(max(o.limit/2, 1)) {
			o.push(topic, queued{frame: frame, counted: true})
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
// once flush is closed, until the queue is empty. Each turn it takes all
// that is queued (ending the conflation slots: a later event queues
// anew) and writes it corked, with one write to the connection per
// corkLimit bytes; it uncorks before it waits again.
func (o *outbox) writeLoop() {
	defer close(o.done)
	for {
		if batch := o.take(); len(batch) > 0 {
			if !o.writeBatch(batch) {
				return
			}
			continue
		}
		select {
		case <-o.wake:
		case <-o.flush:
			if batch := o.take(); len(batch) > 0 {
				o.writeBatch(batch)
			}
			return
		case <-o.ctx.Done():
			return
		}
	}
}

// take takes everything queued, for writeLoop, which is writing from
// then until writeBatch has written it.
func (o *outbox) take() []queued {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writing = len(o.queue) > 0
	if !o.writing {
		return nil // keep the queue's array: the next frames go there
	}
	batch := o.queue
	o.queue = o.spare[:0]
	o.spare = nil
	clear(o.slots)
	return batch
}

// writeBatch writes a batch of frames corked, freeing their places in
// the queue; false when the connection failed: it is then closed (the
// reader ends too), after what is held went out, since that may be a
// close frame (a write fails once the close frame was sent).
func (o *outbox) writeBatch(batch []queued) bool {
	if o.cork != nil {
		o.cork.cork()
	}
	ok := true
	for i := range batch {
		if ok = o.write(&batch[i]); !ok {
			for _, q := range batch[i+1:] {
				o.release(q)
			}
			break
		}
	}
	if o.cork != nil && o.cork.uncork() != nil {
		ok = false
	}
	if !ok {
		_ = o.ws.CloseNow()
	}
	clear(batch) // the frames are garbage now
	o.mu.Lock()
	o.spare = batch[:0]
	o.writing = false // written: the client is not behind this batch any more
	o.mu.Unlock()
	return ok
}

// write writes one frame and frees its place in the queue; false when
// the connection failed.
func (o *outbox) write(q *queued) bool {
	frame := q.frame
	if q.skipped > 0 {
		o.scratch = withSkipped(o.scratch[:0], frame, q.skipped)
		frame = o.scratch
	}
	err := o.ws.Write(context.Background(), websocket.MessageText, frame)
	o.release(*q)
	if err != nil {
		return false
	}
	o.written.Add(1)
	o.report(observe.ConnEvent{Kind: observe.FrameSent})
	return true
}

// release frees a frame's place in the queue.
func (o *outbox) release(q queued) {
	switch {
	case q.answer:
		<-o.answers
	case q.counted:
		o.events.Add(-1)
		select {
		case o.room <- struct{}{}:
		default:
		}
	}
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
