package socket

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// Event is an event a service published, as Subscribe delivers it.
type Event struct {
	// Topic is the topic it was published on (never a pattern).
	Topic string
	// Seq increases by one per event the publishing instance sends on the
	// topic; each instance counts on its own.
	Seq uint64
	// Data is the event's JSON, e.g. the object as a read returns it.
	Data json.RawMessage
	// Visibility says who may see it; a delegating key (the gateway) gets
	// every event and filters with Visibility.Allows.
	Visibility Visibility
	// Gap says events may be missing before this one: the seq jumped (the
	// service dropped events its stream could not take, or, for a key
	// that does not delegate, events it may not see), or this
	// subscription's own queue overflowed. When a stream to an instance
	// breaks, its events until the subscription is renewed are lost: the
	// subscription then gets an Event with Gap set, Topic the subscribed
	// topic or pattern and no Data.
	Gap bool
}

// subscriptionQueue is how many events wait for one subscription's
// callback; beyond it events are dropped and the next one marks the gap.
const subscriptionQueue = 1024

// maxTrackedTopics bounds the seqs a stream remembers for gap detection;
// past it the stream forgets them (the next event of each topic then
// cannot show a gap).
const maxTrackedTopics = 1 << 16

// clientEvents are a client's subscriptions.
type clientEvents struct {
	mu     sync.Mutex // guards subs, topics, seqs; held while streams are told of (un)subscriptions and while a stream is put in use (instance.activate)
	subs   map[*subscription]struct{}
	topics map[string]int                      // subscribed topics and patterns → subscriptions
	seqs   map[*clientStream]map[string]uint64 // the last seq per stream and topic
}

// subscription is one Subscribe call's callback and queue.
type subscription struct {
	topic   string
	fn      func(Event)
	queue   chan Event
	dropped atomic.Bool // an event did not fit: mark the next one
	done    chan struct{}
	once    sync.Once
}

// Subscribe calls fn with every event published on topic by any instance
// of the service, until ctx ends or stop is called. topic is one topic
// ("orders/ord_1") or a pattern whose last segment is "*" ("orders/*", or
// "*" for everything of the service). The subscription is sent on every
// instance's stream, before any request made after Subscribe returns, and
// renewed on every stream opened later (reconnects, new instances).
//
// fn runs on a goroutine of the subscription's own, one event at a time,
// in the order the events arrived; a slow fn never holds up the stream:
// past a bounded queue events are dropped and the next one has Gap set.
// A delegating key receives every event; others only those their
// principal may see. Errors: INVALID_ARGUMENT for a bad topic,
// UNAVAILABLE once the client is closed.
func (c *Client) Subscribe(ctx context.Context, topic string, fn func(Event)) (stop func(), err error) {
	if e := checkTopic(topic, true); e != nil {
		return nil, e
	}
	sub := &subscription{topic: topic, fn: fn, queue: make(chan Event, subscriptionQueue), done: make(chan struct{})}
	ev := &c.events
	ev.mu.Lock()
	if c.ctx.Err() != nil {
		ev.mu.Unlock()
		return nil, errClientClosed
	}
	if ev.subs == nil {
		ev.subs, ev.topics, ev.seqs = map[*subscription]struct{}{}, map[string]int{}, map[*clientStream]map[string]uint64{}
	}
	ev.subs[sub] = struct{}{}
	ev.topics[topic]++
	if ev.topics[topic] == 1 {
		f := &socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Subscribe{Subscribe: &socketv1.Subscribe{Topic: topic}}}
		for _, inst := range *c.picks.Load() {
			if st := inst.cur.Load(); st != nil {
				st.sendFrame(f)
			}
		}
	}
	c.wg.Add(1)
	ev.mu.Unlock()
	go sub.run(&c.wg)
	unwatch := context.AfterFunc(ctx, func() { c.unsubscribe(sub) })
	stopClient := context.AfterFunc(c.ctx, func() { c.unsubscribe(sub) })
	return func() { unwatch(); stopClient(); c.unsubscribe(sub) }, nil
}

// run calls the subscription's callback until it is stopped.
func (sub *subscription) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case e := <-sub.queue:
			select {
			case <-sub.done:
				return
			default:
			}
			sub.fn(e)
		case <-sub.done:
			return
		}
	}
}

// offer queues an event for the callback, or drops it when the queue is
// full.
func (sub *subscription) offer(e Event) {
	if sub.dropped.Load() {
		e.Gap = true
	}
	select {
	case sub.queue <- e:
		if e.Gap {
			sub.dropped.Store(false)
		}
	default:
		sub.dropped.Store(true)
	}
}

// unsubscribe ends a subscription; the last one of a topic is withdrawn
// from the streams.
func (c *Client) unsubscribe(sub *subscription) {
	sub.once.Do(func() {
		close(sub.done)
		ev := &c.events
		ev.mu.Lock()
		defer ev.mu.Unlock()
		delete(ev.subs, sub)
		if ev.topics[sub.topic]--; ev.topics[sub.topic] > 0 {
			return
		}
		delete(ev.topics, sub.topic)
		if c.ctx.Err() != nil {
			return
		}
		f := &socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Unsubscribe{Unsubscribe: &socketv1.Unsubscribe{Topic: sub.topic}}}
		for _, inst := range *c.picks.Load() {
			if st := inst.cur.Load(); st != nil {
				st.sendFrame(f)
			}
		}
	})
}

// activate puts a newly opened stream in use: it is subscribed to every
// subscribed topic first, so no request made on it comes before them.
func (inst *instance) activate(st *clientStream) {
	ev := &inst.c.events
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for topic := range ev.topics {
		st.sendFrame(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Subscribe{Subscribe: &socketv1.Subscribe{Topic: topic}}})
	}
	inst.cur.Store(st)
}

// sendFrame queues a frame that answers nothing (subscribe, unsubscribe)
// for the stream's sender, waiting while the queue is full; a frame for a
// stream that ended is dropped.
func (st *clientStream) sendFrame(f *socketv1.ConnectRequest) {
	for {
		s, changed := st.observe()
		if s >= streamDrained {
			return
		}
		select {
		case st.sendq <- outgoing{frame: f}:
			return
		case <-changed:
		}
	}
}

// onEvent hands an event that arrived on a stream to the subscriptions
// whose topic it matches, marking a gap when the stream's seq for the
// topic jumped.
func (c *Client) onEvent(st *clientStream, pe *socketv1.Event) {
	e := Event{Topic: pe.GetTopic(), Seq: pe.GetSeq(), Data: pe.GetData(), Visibility: visibilityFromProto(pe.GetVisibility())}
	ev := &c.events
	ev.mu.Lock()
	defer ev.mu.Unlock()
	seqs := ev.seqs[st]
	if seqs == nil || len(seqs) >= maxTrackedTopics {
		seqs = map[string]uint64{}
		if ev.seqs == nil {
			ev.seqs = map[*clientStream]map[string]uint64{}
		}
		ev.seqs[st] = seqs
	}
	if last, ok := seqs[e.Topic]; ok && e.Seq != last+1 {
		e.Gap = true
	}
	seqs[e.Topic] = e.Seq
	for sub := range ev.subs {
		if topicMatches(sub.topic, e.Topic) {
			sub.offer(e)
		}
	}
}

// streamEnded forgets a stream's seqs; when it broke (rather than being
// drained), every subscription learns that events may be lost.
func (c *Client) streamEnded(st *clientStream) {
	ev := &c.events
	ev.mu.Lock()
	defer ev.mu.Unlock()
	delete(ev.seqs, st)
	if st.loadState() != streamBroken || c.ctx.Err() != nil {
		return
	}
	for sub := range ev.subs {
		sub.offer(Event{Topic: sub.topic, Gap: true})
	}
}
