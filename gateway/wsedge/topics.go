package wsedge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"

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

	mu      sync.Mutex // guards ready and pending
	ready   bool       // the subscribe's answer is queued: events go straight to the queue
	pending [][]byte   // events that came before the answer was queued
}

// deliver queues an event frame (never blocking: see outbox.event), or
// holds it until the subscribe's answer is queued, so the answer comes
// first.
func (w *wsTopic) deliver(out *outbox, frame []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ready {
		if len(w.pending) >= out.limit {
			out.cutOff()
			return
		}
		w.pending = append(w.pending, frame)
		return
	}
	out.event(frame)
}

// answered sends the events that came before the answer, then the rest
// as they come.
func (w *wsTopic) answered(out *outbox) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.pending {
		out.event(f)
	}
	w.ready, w.pending = true, nil
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
	sub := &wsTopic{}
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
		kept, a = c.subscribe(ctx, f.Topic, resource, id, sub)
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
func (c *wsConn) subscribe(ctx context.Context, topic, resource, id string, sub *wsTopic) (bool, Answer) {
	stop, a := c.watch(ctx, topic, resource, id, sub)
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
// topic for sub.
func (c *wsConn) watch(ctx context.Context, topic, resource, id string, sub *wsTopic) (func(), Answer) {
	get := &clientFrame{Type: frameRequest, Method: http.MethodGet, Path: "/" + url.PathEscape(resource) + "/" + url.PathEscape(id)}
	if a := c.serveRequest(ctx, get); a.Err != nil {
		return nil, a
	}
	stop, seq, refused := c.e.core.Watch(c.ctx, c.version, topic, c.creds.get(), func(ev Event) {
		sub.deliver(c.out, c.e.sockets.eventFrame(ev))
	})
	if refused.Err != nil {
		return nil, refused
	}
	b, _ := json.Marshal(map[string]any{"topic": topic, "subscribed": true, "seq": seq})
	return stop, Answer{Status: http.StatusOK, Result: b}
}

// encodedEvent is an event frame and the event it encodes.
type encodedEvent struct {
	topic string
	seq   uint64
	data  *byte // the first byte of the event's Data: every watcher gets the same slice
	frame []byte
}

// eventFrame encodes an event once for all of a topic's watchers: the hub
// delivers one event to every watcher before the next, so the last
// encoding is reused until another event comes.
func (s *socketSet) eventFrame(ev Event) []byte {
	if ev.Gap {
		return gapFrame(ev.Topic, ev.Seq)
	}
	var data *byte
	if len(ev.Data) > 0 {
		data = &ev.Data[0]
	}
	if last := s.lastEvent.Load(); last != nil && last.seq == ev.Seq && last.data == data && last.topic == ev.Topic {
		return last.frame
	}
	e := &encodedEvent{topic: ev.Topic, seq: ev.Seq, data: data, frame: eventFrame(ev.Topic, ev.Seq, ev.Data)}
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
