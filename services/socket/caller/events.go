package caller

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/status"
)

// Event is an event a service published, as Subscribe delivers it.
type Event struct {
	// Topic is the topic it was published on (never a pattern).
	Topic string
	// Seq increases by one per event the publishing instance sends on the
	// topic; each instance counts on its own. Over NATS it is the
	// instance's seq from the event's Streamgate-Seq header (0 without
	// one), not the JetStream stream's sequence.
	Seq uint64
	// Data is the event's JSON, e.g. the object as a read returns it.
	Data json.RawMessage
	// Visibility says who may see it; a delegating key (the gateway) gets
	// every event and filters with Visibility.Allows.
	Visibility socket.Visibility
	// Gap says events may be missing before this one: the seq jumped (the
	// service dropped events its stream could not take, or, for a key
	// that does not delegate, events it may not see), or this
	// subscription's own queue overflowed. When the service drops events
	// for a stream it says so as soon as it can: the subscription then
	// gets an Event with Gap set, Topic the subscribed topic or pattern
	// and no Data. When a stream to an instance
	// ends (it broke, or the instance drained: events queued for it or
	// published after may not have arrived), its events until the
	// subscription is renewed are lost: the
	// subscription then gets an Event with Gap set, Topic the subscribed
	// topic or pattern and no Data, and another once the instance's next
	// stream is subscribed (a cache drops what it holds again then).
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
	ctx            context.Context // the client's: ends when it closes
	wg             *sync.WaitGroup // the client's: the subscriptions' goroutines
	pool           *pool           // the client's instances, whose streams carry the subscriptions
	connectTimeout time.Duration   // bounds the wait for acknowledgements

	// frames serializes the (un)subscribe changes handed to the streams
	// (topicFrames), so that they apply in the order of the changes;
	// taken before mu, and never held while waiting for a stream.
	frames     sync.Mutex
	mu         sync.Mutex                          // guards subs, topics, seqs, activating
	subs       map[*subscription]struct{}          //
	topics     map[string]int                      // subscribed topics and patterns → subscriptions
	seqs       map[*clientStream]map[string]uint64 // the last seq per stream and topic
	activating map[*clientStream]bool              // new streams being subscribed before they take requests
	broke      map[*instance]bool                  // instances whose stream broke since their last activation

	ackMu sync.Mutex      // guards acks
	acks  map[ackKey]*ack // subscribe frames waiting for the service's acknowledgement
}

// ack is the acknowledgement of one subscribe frame: done is closed when
// it came (err set when the service refused), or the stream ended.
type ack struct {
	done chan struct{}
	err  *status.Error
}

// ackKey names a subscribe frame waiting for its acknowledgement.
type ackKey struct {
	st    *clientStream
	topic string
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
// "*" for everything of the service). The subscription is made on every
// instance's stream and renewed on every stream opened later (reconnects,
// new instances, before the stream takes requests). With no ready stream,
// Subscribe first waits for one as a request would (while an instance's
// first connection attempt is under way, as right after Dial, or a
// reconnect is due within WithReadyWait); it then returns once every
// instance with a ready stream acknowledged it (at most the connect
// timeout; see WithConnectTimeout): events published after that reach
// fn. When no stream became ready, the subscription is still made, on
// the streams that open later.
//
// fn runs on a goroutine of the subscription's own, one event at a time,
// in the order the events arrived; a slow fn never holds up the stream:
// past a bounded queue events are dropped and the next one has Gap set.
// A delegating key receives every event; others only those their
// principal may see; a key limited to some actions may not subscribe
// (PERMISSION_DENIED, when an instance refuses). Errors: INVALID_ARGUMENT
// for a bad topic, PERMISSION_DENIED, UNAVAILABLE once the client is
// closed.
//
// Over NATS (WithNATS), the subscription is one NATS subscription on the
// subject of the topic or pattern under "streamgate.events", which gets
// the events the service's instances publish into JetStream
// (natsserve.WithEvents) as they are published: those whose
// Streamgate-Service header is the client's service and that the client's
// key may see, which an instance of the service tells once per client
// (the service's keyring decides, as on a stream: PERMISSION_DENIED for a
// key limited to some actions). While no instance has answered, events
// that arrive are lost to the subscription (the next has Gap set). A seq
// that jumps for an instance and topic marks a Gap (events the key may
// not see do not), and so does the first event after the NATS connection
// reconnected. Subscribe returns once the NATS server has the
// subscription (at most the connect timeout); stop removes it.
func (c *Client) Subscribe(ctx context.Context, topic string, fn func(Event)) (stop func(), err error) {
	if c.nats != nil {
		return c.natsSubscribe(ctx, topic, fn)
	}
	return c.events.subscribe(ctx, topic, fn)
}

// subscribe is Subscribe.
func (ev *clientEvents) subscribe(ctx context.Context, topic string, fn func(Event)) (stop func(), err error) {
	if e := wire.CheckTopic(topic, true); e != nil {
		return nil, e
	}
	// A stream that is not ready yet would be subscribed only when it
	// opens: what the service published meanwhile would be lost, with no
	// gap to tell.
	if _, err := ev.pool.pick(ctx, nil); errors.Is(err, errClientClosed) {
		return nil, errClientClosed
	}
	sub := &subscription{topic: topic, fn: fn, queue: make(chan Event, subscriptionQueue), done: make(chan struct{})}
	ev.frames.Lock()
	ev.mu.Lock()
	if ev.ctx.Err() != nil {
		ev.mu.Unlock()
		ev.frames.Unlock()
		return nil, errClientClosed
	}
	if ev.subs == nil {
		ev.subs, ev.topics = map[*subscription]struct{}{}, map[string]int{}
	}
	ev.subs[sub] = struct{}{}
	ev.topics[topic]++
	first := ev.topics[topic] == 1
	streams := ev.subscribedStreamsLocked()
	ev.wg.Add(1)
	ev.mu.Unlock()
	acks := make([]*ack, 0, len(streams))
	for _, st := range streams {
		acks = append(acks, ev.subscribeOn(st, topic, first))
	}
	ev.frames.Unlock()
	go sub.run(ev.wg)
	unwatch := context.AfterFunc(ctx, func() { ev.unsubscribe(sub) })
	stopClient := context.AfterFunc(ev.ctx, func() { ev.unsubscribe(sub) })
	stop = func() { unwatch(); stopClient(); ev.unsubscribe(sub) }
	if err := ev.awaitAcks(ctx, acks); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// subscribedStreamsLocked returns the streams that carry the
// subscriptions: those taking requests and those being activated. Called
// with events.mu held.
func (ev *clientEvents) subscribedStreamsLocked() []*clientStream {
	var out []*clientStream
	for _, inst := range *ev.pool.picks.Load() {
		if st := inst.cur.Load(); st != nil {
			out = append(out, st)
		}
	}
	for st := range ev.activating {
		out = append(out, st)
	}
	return out
}

// subscribeOn sends a subscribe frame for topic on st (unless send is
// false: the topic is subscribed already) and returns its
// acknowledgement, nil when there is none to wait for.
func (ev *clientEvents) subscribeOn(st *clientStream, topic string, send bool) *ack {
	key := ackKey{st, topic}
	ev.ackMu.Lock()
	ch := ev.acks[key]
	if ch == nil && send {
		ch = &ack{done: make(chan struct{})}
		if ev.acks == nil {
			ev.acks = map[ackKey]*ack{}
		}
		ev.acks[key] = ch
	}
	ev.ackMu.Unlock()
	if ch == nil {
		return nil // in place already
	}
	if send {
		st.setTopic(topic, true)
	}
	return ch
}

// onSubscribed records a service's acknowledgement of a subscribe frame.
func (ev *clientEvents) onSubscribed(st *clientStream, f *socketv1.Subscribed) {
	key := ackKey{st, f.GetTopic()}
	ev.ackMu.Lock()
	defer ev.ackMu.Unlock()
	if a := ev.acks[key]; a != nil {
		if f.GetError() != nil {
			a.err = wire.ErrorFromProto(f.GetError())
		}
		close(a.done)
		delete(ev.acks, key)
	}
}

// awaitAcks waits for subscribe frames' acknowledgements, at most the
// connect timeout, and not after ctx ends or the client closes. It
// returns the first refusal.
func (ev *clientEvents) awaitAcks(ctx context.Context, acks []*ack) *status.Error {
	timer := time.NewTimer(ev.connectTimeout)
	defer timer.Stop()
	for _, a := range acks {
		if a == nil {
			continue
		}
		select {
		case <-a.done:
			if a.err != nil {
				return a.err
			}
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		case <-ev.ctx.Done():
			return nil
		}
	}
	return nil
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
func (ev *clientEvents) unsubscribe(sub *subscription) {
	sub.once.Do(func() {
		close(sub.done)
		ev.frames.Lock()
		defer ev.frames.Unlock()
		ev.mu.Lock()
		delete(ev.subs, sub)
		ev.topics[sub.topic]--
		last := ev.topics[sub.topic] == 0
		var streams []*clientStream
		if last {
			delete(ev.topics, sub.topic)
			if ev.ctx.Err() == nil {
				streams = ev.subscribedStreamsLocked()
			}
		}
		ev.mu.Unlock()
		for _, st := range streams {
			st.setTopic(sub.topic, false)
		}
	})
}

// activate puts a newly opened stream in use: it is subscribed to every
// subscribed topic, and the service acknowledged them (at most the
// connect timeout), before it takes requests.
func (inst *instance) activate(st *clientStream) {
	ev := &inst.c.events
	ev.frames.Lock()
	ev.mu.Lock()
	topics := make([]string, 0, len(ev.topics))
	for t := range ev.topics {
		topics = append(topics, t)
	}
	if ev.activating == nil {
		ev.activating = map[*clientStream]bool{}
	}
	ev.activating[st] = true // (un)subscriptions from now on reach it too
	ev.mu.Unlock()
	acks := make([]*ack, 0, len(topics))
	for _, t := range topics {
		acks = append(acks, ev.subscribeOn(st, t, true))
	}
	ev.frames.Unlock()
	// A refusal here was the refusal its Subscribe already returned (the
	// key's scope does not change while the client runs): the new stream
	// takes requests either way.
	_ = ev.awaitAcks(inst.ctx, acks)
	ev.mu.Lock()
	delete(ev.activating, st)
	inst.cur.Store(st)
	if ev.broke[inst] {
		// What the instance published while its stream was down is lost:
		// say so again now that events flow (a cache drops what it holds).
		delete(ev.broke, inst)
		ev.gapLocked()
	}
	ev.mu.Unlock()
}

// gapLocked tells every subscription that events may be lost. Called with
// mu held.
func (ev *clientEvents) gapLocked() {
	for sub := range ev.subs {
		sub.offer(Event{Topic: sub.topic, Gap: true})
	}
}

// onEvent hands an event that arrived on a stream to the subscriptions
// whose topic it matches, marking a gap when the stream's seq for the
// topic jumped.
func (ev *clientEvents) onEvent(st *clientStream, pe *socketv1.Event) {
	e := Event{Topic: pe.GetTopic(), Seq: pe.GetSeq(), Data: pe.GetData(), Visibility: visibilityOf(pe.GetVisibility())}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if pe.GetGap() {
		// The service dropped events for this stream: say so now, not at
		// a topic's next event, which may never come.
		ev.gapLocked()
		return
	}
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
		if wire.TopicMatches(sub.topic, e.Topic) {
			sub.offer(e)
		}
	}
}

// streamEnded forgets a stream's seqs and pending acknowledgements, and
// every subscription learns that events may be lost, now and again once
// the instance's next stream is subscribed: whether the stream broke or
// was drained, events the instance published may have been queued for
// it or in flight when it ended (and a drained instance's requests still
// running publish after), and nothing proves they all arrived. Only a
// client that is closing says nothing: its subscriptions end with it.
func (ev *clientEvents) streamEnded(st *clientStream) {
	ev.ackMu.Lock()
	for k, a := range ev.acks {
		if k.st == st {
			close(a.done) // no answer will come
			delete(ev.acks, k)
		}
	}
	ev.ackMu.Unlock()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	delete(ev.seqs, st)
	if ev.ctx.Err() != nil {
		return
	}
	if len(ev.subs) > 0 {
		if ev.broke == nil {
			ev.broke = map[*instance]bool{}
		}
		ev.broke[st.inst] = true
	}
	ev.gapLocked()
}

// visibilityOf is an event frame's visibility as Event carries it.
func visibilityOf(v *socketv1.Visibility) socket.Visibility {
	return socket.Visibility{Public: v.GetPublic(), Subjects: v.GetSubjects(), Roles: v.GetRoles()}
}
