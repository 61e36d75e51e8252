package hub

import (
	"context"
	"sync"
	"time"

	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/services/socket"
)

// Log hands the gateway's watchers the events services store in
// JetStream (the gateway's events: block), instead of subscribing to each
// service. Each topic is read by one ordered consumer of the event log,
// shared by the topic's local watchers and deleted with the last
// (eventlog.Log.Watch); every gateway numbers a topic's events alike, with
// the stream's seq and epoch, so a client resumes on any of them.
//
//	l := hub.NewLog(events)
//	stop, start, err := l.Watch(ctx, "orders", "orders/ord_1", eventlog.Position{Epoch: e, Seq: since}, principal, deliver)
type Log struct {
	events *eventlog.Log

	mu     sync.Mutex     // guards closed and again's additions
	closed bool           // Close was called: no watch is made again
	again  sync.WaitGroup // the watches made again after their stream's epoch passed
}

// NewLog reads events from events.
func NewLog(events *eventlog.Log) *Log { return &Log{events: events} }

// Watch adds a watcher acting for p to topic, from the position a client
// last saw, and calls deliver with every event after it that publisher
// (the name the topic's service serves under: its Streamgate-Service)
// published and p may see (the event's Streamgate-Visibility, as every
// reader of events filters: eventlog.Visibility), in seq order, each
// once, then the live ones,
// until stop is called or ctx ends. start says whether from was
// recovered (every event after it follows) or not (the client refetches;
// the events follow start.Seq).
//
// When the topic's stream is made again while watched, the watch goes on
// in the new epoch: deliver gets a gap marker with the new epoch and the
// seq the later events follow.
//
// deliver must not block and must not call stop; it is not called once
// stop has returned. Errors: INVALID_ARGUMENT for a topic under no
// window, UNAVAILABLE when JetStream cannot be read.
func (l *Log) Watch(ctx context.Context, publisher, topic string, from eventlog.Position, p socket.Principal, deliver func(Event)) (stop func(), start eventlog.Start, err error) {
	w := &logWatch{log: l, publisher: publisher, topic: topic, p: p, deliver: deliver, live: true}
	start, end, err := l.events.Watch(ctx, topic, from, w.onEvent)
	if err != nil {
		return nil, eventlog.Start{}, err
	}
	w.mu.Lock()
	w.end = end
	w.mu.Unlock()
	unwatch := context.AfterFunc(ctx, w.stop)
	return func() { unwatch(); w.stop() }, start, nil
}

// Watched returns how many topics are read now (one consumer each).
func (l *Log) Watched() int { return l.events.Watched() }

// Close waits for the watches being made again to be made; after it none
// is (the watches themselves end with their stop).
func (l *Log) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.again.Wait()
}

// watchAgain has w watch again on a goroutine of its own, unless the Log
// is closed.
func (l *Log) watchAgain(w *logWatch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.again.Add(1)
	go w.watchAgain()
}

// logWatch is one watcher of a topic in the event log.
type logWatch struct {
	log       *Log
	publisher string
	topic     string
	p         socket.Principal
	deliver   func(Event)

	mu      sync.Mutex // guards the fields below; held while deliver runs for a watch made again
	end     func()     // ends the watch in force; nil while it is made
	stopped bool
	live    bool    // events go to deliver (false while a watch made again waits for its gap marker)
	held    []Event // events of the watch made again before its gap marker
}

// onEvent hands deliver an event p may see; an Ended event (the stream's
// epoch passed) has the watch made again in the new epoch.
func (w *logWatch) onEvent(ev eventlog.Event) {
	if ev.Ended {
		w.log.watchAgain(w)
		return
	}
	if ev.Header.Get(eventlog.HeaderService) != w.publisher || !eventlog.Visibility(ev.Header).Allows(w.p) {
		return
	}
	out := Event{Topic: ev.Topic, Seq: ev.Seq, Epoch: ev.Epoch, Data: ev.Data}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.stopped:
	case !w.live:
		w.held = append(w.held, out) // bounded by one watch's decision: a round trip of events
	default:
		w.deliver(out)
	}
}

// watchAgainTimeout bounds making a deleted stream again.
const watchAgainTimeout = 10 * time.Second

// watchAgain makes the topic's stream again if it is gone, watches it in
// its new epoch, from now on, and hands deliver a gap marker with the new
// epoch before the new watch's events (without one, when it cannot: no
// event follows).
func (w *logWatch) watchAgain() {
	defer w.log.again.Done()
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	ended := w.end
	w.live, w.end = false, nil
	w.mu.Unlock()
	if ended != nil {
		ended() // the watch that ended leaves its feed
	}
	ctx, cancel := context.WithTimeout(context.Background(), watchAgainTimeout)
	defer cancel()
	var start eventlog.Start
	var end func()
	err := w.log.events.Ensure(ctx, w.topic) // the gateway's windows outlive a deleted stream
	if err == nil {
		// Not ctx: the watch lasts until stopped (JetStream's own timeout
		// bounds its round trips).
		start, end, err = w.log.events.Watch(context.Background(), w.topic, eventlog.Position{}, w.onEvent)
	}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		if end != nil {
			end() // not under mu: end waits for a running onEvent
		}
		return
	}
	defer w.mu.Unlock()
	if err != nil {
		w.stopped, w.held = true, nil
		w.deliver(Event{Topic: w.topic, Gap: true}) // no later event comes: the client refetches
		return
	}
	w.end = end
	w.deliver(Event{Topic: w.topic, Seq: start.Seq, Epoch: start.Epoch, Gap: true})
	for _, ev := range w.held {
		w.deliver(ev)
	}
	w.live, w.held = true, nil
}

// stop ends the watch.
func (w *logWatch) stop() {
	w.mu.Lock()
	end := w.end
	w.stopped, w.end, w.held = true, nil, nil
	w.mu.Unlock()
	if end != nil {
		end()
	}
}
