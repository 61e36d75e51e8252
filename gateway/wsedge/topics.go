package wsedge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/services/socket"
)

// subscriptions are a socket's topics: each reserved when its subscribe
// frame comes, in frame order, so an unsubscribe read after it finds it
// and the bound counts the subscribes still running.
type subscriptions struct {
	limit int // Limits.Topics

	mu      sync.Mutex          // guards byTopic and each wsTopic's stop
	byTopic map[string]*wsTopic // the subscriptions, by topic
}

// newSubscriptions makes a socket's subscriptions, limit at most.
func newSubscriptions(limit int) *subscriptions {
	return &subscriptions{limit: limit, byTopic: map[string]*wsTopic{}}
}

// reserve reserves topic for sub, unless the socket watches it already
// or has limit subscriptions.
func (s *subscriptions) reserve(topic string, sub *wsTopic) (watching, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, watching = s.byTopic[topic]
	full = len(s.byTopic) >= s.limit
	if !watching && !full {
		s.byTopic[topic] = sub
	}
	return watching, full
}

// release drops sub's reservation of topic, if it still holds it.
func (s *subscriptions) release(topic string, sub *wsTopic) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byTopic[topic] == sub {
		delete(s.byTopic, topic)
	}
}

// keep makes sub, watching until stop, topic's subscription if it still
// holds the reservation, its watch began and the socket is not draining;
// otherwise it drops the reservation and reports false.
func (s *subscriptions) keep(topic string, sub *wsTopic, stop func(), draining bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.byTopic[topic] == sub && stop != nil && !draining
	if kept {
		sub.stop = stop
	} else if s.byTopic[topic] == sub {
		delete(s.byTopic, topic)
	}
	return kept
}

// remove ends topic's subscription (one still subscribing sees its topic
// gone and ends its watch itself).
func (s *subscriptions) remove(topic string) {
	s.mu.Lock()
	var stop func()
	if w := s.byTopic[topic]; w != nil {
		stop = w.stop // nil while its subscribe runs: that one sees the topic gone
		delete(s.byTopic, topic)
	}
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// stopAll ends the socket's subscriptions (those still subscribing see
// their topic gone and end their watch themselves).
func (s *subscriptions) stopAll() {
	s.mu.Lock()
	topics := s.byTopic
	s.byTopic = map[string]*wsTopic{}
	s.mu.Unlock()
	for _, w := range topics {
		if w.stop != nil {
			w.stop()
		}
	}
}

// wsTopic is one of a socket's subscriptions: reserved in subscriptions
// when its subscribe frame comes, watching once the check passed.
type wsTopic struct {
	stop func() // ends the watch (idempotent); nil while the subscribe runs. Guarded by subscriptions.mu

	// paced marks a resumed subscription (subscribe with since): the
	// missed events come as fast as the event log reads them, before and
	// after the answer, so all of its events go out at the client's pace,
	// through pending, by its own goroutine (drain).
	paced bool
	wake  chan struct{} // paced: a token when pending grows after the answer
	done  chan struct{} // paced: closed when the subscription ends
	end   sync.Once     // closes done

	mu      sync.Mutex // guards ready and pending
	ready   bool       // the answer is queued: events go straight to the queue (paced: to drain)
	pending []held     // events held (paced: counted in outbox.backlog)
}

// held is an event held by a subscription, and its frame.
type held struct {
	frame []byte
	ev    Event
}

// newTopic makes a subscription, paced when it resumes.
func newTopic(paced bool) *wsTopic {
	w := &wsTopic{paced: paced}
	if paced {
		w.wake, w.done = make(chan struct{}, 1), make(chan struct{})
	}
	return w
}

// ending returns stop that also ends the subscription's drain.
func (w *wsTopic) ending(stop func()) func() {
	if !w.paced || stop == nil {
		return stop
	}
	return func() {
		stop()
		w.end.Do(func() { close(w.done) })
	}
}

// deliver queues an event frame (never blocking: see outbox.event and
// outbox.conflate), or holds it until the subscribe's answer is queued,
// so the answer comes first (a client that lets SendQueue events pile up
// meanwhile is cut off, as later). A live event of a topic that may be
// conflated replaces the topic's event still queued; a gap marker, or an
// event whose resource says conflate: false, is queued as it comes. A
// paced subscription is never conflated (its missed events and then the
// live ones go out in order at the client's pace): it holds every event
// for drain, in the socket's backlog: past it the held events give way
// to a gap marker at ev's seq (its epoch's), the client refetches, and
// the later events follow it.
func (w *wsTopic) deliver(out *outbox, ev Event, frame []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !w.paced && w.ready:
		w.queue(out, ev, frame)
		return
	case !w.paced && len(w.pending) >= out.limit:
		out.cutOff()
		return
	case !w.paced:
		w.pending = append(w.pending, held{frame: frame, ev: ev})
		return
	}
	if out.backlog.Add(1) > int64(out.backlogLimit) {
		out.backlog.Add(-int64(len(w.pending)) - 1)
		w.pending = nil
		ev = Event{Topic: ev.Topic, Seq: ev.Seq, Epoch: ev.Epoch, Gap: true}
		frame = gapFrame(ev.Topic, ev.Seq, ev.Epoch)
		out.backlog.Add(1)
	}
	w.pending = append(w.pending, held{frame: frame, ev: ev})
	if w.ready {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// queue queues a live event's frame: conflated, unless it is a gap
// marker or its resource says conflate: false.
func (w *wsTopic) queue(out *outbox, ev Event, frame []byte) {
	if ev.Gap || ev.NoConflate {
		out.event(ev.Topic, frame)
		return
	}
	out.conflate(ev.Topic, frame, ev.Skipped)
}

// answered sends the events that came before the answer, then the rest
// as they come; a paced subscription's go out through drain, at the
// client's pace (outbox.eventPaced). It runs on the subscribe's
// goroutine.
func (w *wsTopic) answered(out *outbox) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ready = true
	if w.paced {
		go w.drain(out)
		return
	}
	for _, h := range w.pending {
		w.queue(out, h.ev, h.frame)
	}
	w.pending = nil
}

// drain sends a paced subscription's events as they are held, until the
// subscription or the socket ends.
func (w *wsTopic) drain(out *outbox) {
	for {
		w.mu.Lock()
		events := w.pending
		w.pending = nil
		w.mu.Unlock()
		if !w.send(out, events) {
			return
		}
		select {
		case <-w.wake:
		case <-w.done:
			return
		case <-out.ctx.Done():
			return
		}
	}
}

// send queues held events at the client's pace; false when the socket
// closes first.
func (w *wsTopic) send(out *outbox, events []held) bool {
	for i, h := range events {
		if !out.eventPaced(h.ev.Topic, h.frame) {
			out.backlog.Add(-int64(len(events) - i))
			return false
		}
		out.backlog.Add(-1)
	}
	return true
}

// unsubscribe serves an unsubscribe frame.
func (c *wsConn) unsubscribe(f *clientFrame) {
	c.subs.remove(f.Topic)
	c.out.answer(responseFrame(f.ID, Answer{Status: http.StatusOK, Result: topicResult(f.Topic, false)}))
}

// subscribeFrame serves a subscribe frame: the topic is reserved at
// once, then checked and watched in a goroutine of its own (see run).
func (c *wsConn) subscribeFrame(f *clientFrame) {
	resource, id, ok := strings.Cut(f.Topic, "/")
	if !ok || resource == "" || !validID(id) || strings.Contains(f.Topic, "*") {
		c.out.answer(responseFrame(f.ID, failed(http.StatusBadRequest, socket.Errorf(socket.CodeInvalidArgument, "topic %q: want {resource}/{id}, e.g. orders/ord_1", f.Topic))))
		return
	}
	sub := newTopic(len(f.Since) > 0 && string(f.Since) != "null")
	switch watching, full := c.subs.reserve(f.Topic, sub); {
	case watching:
		c.out.answer(responseFrame(f.ID, Answer{Status: http.StatusOK, Result: topicResult(f.Topic, true)}))
		return
	case full:
		c.out.answer(responseFrame(f.ID, failed(http.StatusTooManyRequests, socket.Errorf(socket.CodeResourceExhausted, "more than %d subscriptions on this socket", c.limits.Topics).
			WithDetails(map[string]any{socket.DetailReason: "too_many_subscriptions"}))))
		return
	}
	kept := false // set and read on the frame's goroutine only
	started := c.run(f, func(ctx context.Context) Answer {
		var a Answer
		kept, a = c.subscribe(ctx, f, resource, id, sub)
		return a
	}, func(Answer) {
		if kept {
			sub.answered(c.out)
		}
	})
	if !started { // refused before it ran (in-flight bound, draining)
		c.subs.release(f.Topic, sub)
	}
}

// subscribe checks that the socket's caller may read the topic's object
// (a GET of it through the dispatcher: 401, 403 or 404 as REST answers),
// then watches the topic for sub, reserved in c.subs. An unsubscribe
// that came while the check ran wins: the watch ends at once.
func (c *wsConn) subscribe(ctx context.Context, f *clientFrame, resource, id string, sub *wsTopic) (bool, Answer) {
	topic := f.Topic
	stop, a := c.watch(ctx, f, resource, id, sub)
	stop = sub.ending(stop)
	kept := c.subs.keep(topic, sub, stop, c.requests.isDraining())
	switch {
	case a.Err != nil:
		return false, a
	case !kept:
		stop() // unsubscribed meanwhile, or draining
		return false, Answer{Status: http.StatusOK, Result: topicResult(topic, false)}
	}
	return true, a
}

// watch checks the caller may read the topic's object, then watches the
// topic for sub from the frame's since and epoch. The answer says where
// the events start: seq, epoch (with the event log) and recovered (every
// event after since follows).
func (c *wsConn) watch(ctx context.Context, f *clientFrame, resource, id string, sub *wsTopic) (func(), Answer) {
	get := &clientFrame{Type: frameRequest, Method: http.MethodGet, Path: "/" + url.PathEscape(resource) + "/" + url.PathEscape(id)}
	if a := c.serveRequest(ctx, get); a.Err != nil {
		return nil, a
	}
	since, _ := sinceOf(f.Since) // checked with the frame
	from := eventlog.Position{Epoch: f.Epoch, Seq: since}
	if len(f.Since) == 0 || string(f.Since) == "null" {
		from = eventlog.Position{} // no since: the events from now on
	}
	stop, start, refused := c.e.core.Watch(c.ctx, c.version, f.Topic, from, c.creds.get(), func(ev Event) {
		sub.deliver(c.out, ev, c.e.sockets.eventFrame(ev))
	})
	if refused.Err != nil {
		return nil, refused
	}
	result := map[string]any{"topic": f.Topic, "subscribed": true, "seq": start.Seq, "recovered": start.Recovered}
	if start.Epoch != "" {
		result["epoch"] = start.Epoch
	}
	b, _ := json.Marshal(result)
	return stop, Answer{Status: http.StatusOK, Result: b}
}

// encodedEvent is an event frame and the event it encodes.
type encodedEvent struct {
	topic string
	seq   uint64
	epoch string
	data  *byte // the first byte of the event's Data: every watcher gets the same slice
	frame []byte
}

// eventFrame encodes an event once for all of a topic's watchers: the hub
// delivers one event to every watcher before the next, so the last
// encoding is reused until another event comes.
func (s *socketSet) eventFrame(ev Event) []byte {
	if ev.Gap {
		return gapFrame(ev.Topic, ev.Seq, ev.Epoch)
	}
	var data *byte
	if len(ev.Data) > 0 {
		data = &ev.Data[0]
	}
	if last := s.lastEvent.Load(); last != nil && last.seq == ev.Seq && last.data == data && last.topic == ev.Topic && last.epoch == ev.Epoch {
		return last.frame
	}
	e := &encodedEvent{topic: ev.Topic, seq: ev.Seq, epoch: ev.Epoch, data: data, frame: eventFrame(ev.Topic, ev.Seq, ev.Epoch, ev.Data)}
	s.lastEvent.Store(e)
	return e.frame
}

// topicResult is a subscribe's or unsubscribe's result.
func topicResult(topic string, subscribed bool) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"topic": topic, "subscribed": subscribed})
	return b
}

// validID reports whether a topic's id is a resource id REST would take
// as one path segment (the gateway's rule for ids).
func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\\\x00")
}
