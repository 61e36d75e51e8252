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

// wsTopic is one of a socket's subscriptions: reserved in wsConn.topics
// when its subscribe frame comes, watching once the check passed.
type wsTopic struct {
	stop func() // ends the watch (idempotent); nil while the subscribe runs. Guarded by wsConn.mu

	mu      sync.Mutex // guards ready and pending
	ready   bool       // the subscribe's answer is queued: events go straight to the queue
	pending [][]byte   // events that came before the answer was queued
}

// deliver queues an event frame (never blocking: see wsConn.sendEvent), or
// holds it until the subscribe's answer is queued, so the answer comes
// first.
func (w *wsTopic) deliver(c *wsConn, frame []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ready {
		if len(w.pending) >= c.limits.SendQueue {
			c.cutOff()
			return
		}
		w.pending = append(w.pending, frame)
		return
	}
	c.sendEvent(frame)
}

// answered sends the events that came before the answer, then the rest
// as they come.
func (w *wsTopic) answered(c *wsConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.pending {
		c.sendEvent(f)
	}
	w.ready, w.pending = true, nil
}

// topicFrame serves subscribe and unsubscribe frames.
func (c *wsConn) topicFrame(f *clientFrame) {
	if f.Type == frameUnsubscribe {
		c.mu.Lock()
		var stop func()
		if w := c.topics[f.Topic]; w != nil {
			stop = w.stop // nil while its subscribe runs: that one sees the topic gone
			delete(c.topics, f.Topic)
		}
		c.mu.Unlock()
		if stop != nil {
			stop()
		}
		c.send(responseFrame(f.ID, Answer{Status: http.StatusOK, Result: topicResult(f.Topic, false)}))
		return
	}
	resource, id, ok := strings.Cut(f.Topic, "/")
	if !ok || resource == "" || !validID(id) || strings.Contains(f.Topic, "*") {
		c.send(responseFrame(f.ID, failed(http.StatusBadRequest, socket.Errorf(socket.CodeInvalidArgument, "topic %q: want {resource}/{id}, e.g. orders/ord_1", f.Topic))))
		return
	}
	// Reserved here, in frame order: an unsubscribe read after this frame
	// finds it, and the bound counts the subscribes still running.
	sub := &wsTopic{}
	c.mu.Lock()
	_, watching := c.topics[f.Topic]
	full := len(c.topics) >= c.limits.Topics
	if !watching && !full {
		c.topics[f.Topic] = sub
	}
	c.mu.Unlock()
	switch {
	case watching:
		c.send(responseFrame(f.ID, Answer{Status: http.StatusOK, Result: topicResult(f.Topic, true)}))
		return
	case full:
		c.send(responseFrame(f.ID, failed(http.StatusTooManyRequests, socket.Errorf(socket.CodeResourceExhausted, "more than %d subscriptions on this socket", c.limits.Topics).
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
			sub.answered(c)
		}
	})
	if !started { // refused before it ran (in-flight bound, draining)
		c.mu.Lock()
		if c.topics[f.Topic] == sub {
			delete(c.topics, f.Topic)
		}
		c.mu.Unlock()
	}
}

// subscribe checks that the socket's caller may read the topic's object
// (a GET of it through the dispatcher: 401, 403 or 404 as REST answers),
// then watches the topic for sub, reserved in c.topics. An unsubscribe
// that came while the check ran wins: the watch ends at once.
func (c *wsConn) subscribe(ctx context.Context, topic, resource, id string, sub *wsTopic) (bool, Answer) {
	stop, a := c.watch(ctx, topic, resource, id, sub)
	c.mu.Lock()
	kept := c.topics[topic] == sub && stop != nil && !c.draining
	if kept {
		sub.stop = stop
	} else if c.topics[topic] == sub {
		delete(c.topics, topic)
	}
	c.mu.Unlock()
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
	stop, seq, refused := c.e.core.Watch(c.ctx, c.version, topic, c.credentials(), func(ev Event) {
		sub.deliver(c, c.e.sockets.eventFrame(ev))
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

// stopTopics ends the socket's subscriptions (those still subscribing
// see their topic gone and end their watch themselves).
func (c *wsConn) stopTopics() {
	c.mu.Lock()
	topics := c.topics
	c.topics = map[string]*wsTopic{}
	c.mu.Unlock()
	for _, w := range topics {
		if w.stop != nil {
			w.stop()
		}
	}
}

// validID reports whether a topic's id is a resource id REST would take
// as one path segment (the gateway's rule for ids).
func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\\\x00")
}
