package eventlog

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Start tells a watcher where its events begin.
type Start struct {
	// Epoch is the epoch of the topic's stream now.
	Epoch string
	// Seq is the seq the events handed to the watcher follow: the
	// Position's when Recovered, else the stream's last seq (no event of
	// the topic after it was missed by the watch).
	Seq uint64
	// Recovered is true when every event after the Position asked for is
	// still held: the watcher gets them all, then the live ones. False
	// when no Position was given, when its epoch is not the stream's (the
	// stream was made again) or when the window no longer holds its
	// events: the watcher refetches what it shows, and its events follow
	// Seq.
	Recovered bool
}

// maxPending bounds the live events a watcher holds while it catches up
// with the topic's feed (Log.pendingLimit); past it they are dropped, and
// the catch-up goes on to the end of the stream instead.
const maxPending = 1 << 14

// teardownTimeout bounds deleting a feed's consumer when its last
// watcher leaves; a consumer not deleted ends on its inactivity timeout.
const teardownTimeout = 5 * time.Second

// consumerInactivity is how long JetStream keeps a feed's consumer that
// nobody reads (a gateway that died without deleting it).
const consumerInactivity = time.Minute

// Watch hands fn the events of topic after from, in seq order, each
// once, then the live ones as they are stored, until stop is called or
// ctx ends. The returned Start says whether from was recovered and which
// seq the events follow; with a zero from, the events stored from now on.
// Deciding takes one round trip to JetStream; a recovered watch on a
// topic this Log already watches then reads the events its feed has
// passed, one round trip each, before Watch returns.
//
// All the watchers of a topic share one ordered consumer. fn runs on the
// consumer's goroutine (or, while Watch catches up, the caller's), one
// call at a time; it must not block, must not call stop (stop waits for
// a running fn), and must not change the Event's Data. fn is not called
// once stop has returned; stop also waits for the topic's consumer to be
// deleted when its last watcher leaves.
func (l *Log) Watch(ctx context.Context, topic string, from Position, fn func(Event)) (Start, func(), error) {
	subject, s, err := l.locate(topic)
	if err != nil {
		return Start{}, nil, err
	}
	f, first := l.join(subject, topic, s)
	w := &watcher{fn: fn, limit: l.pendingLimit}
	start, err := l.begin(ctx, f, first, from, w)
	if err != nil {
		l.leave(f, w)
		return Start{}, nil, errUnavailable(topic, err)
	}
	stop := sync.OnceFunc(func() { l.leave(f, w) })
	unwatch := context.AfterFunc(ctx, stop)
	return start, func() { unwatch(); stop() }, nil
}

// begin decides where w starts, attaches it to the feed and brings it up
// to the feed's live events. The first watcher of a topic decides
// before the feed's consumer exists and starts it there; a later one
// attaches first (holding the feed's events), then decides, then reads
// what the feed passed before it attached.
func (l *Log) begin(ctx context.Context, f *feed, first bool, from Position, w *watcher) (Start, error) {
	if first {
		st, start, err := l.decide(ctx, f.stream, from)
		if err == nil {
			f.position = start.Seq
			f.attach(w)
			w.live, w.delivered = true, start.Seq
			err = f.open(ctx, st)
		}
		f.opened(err)
		if err != nil {
			l.forget(f)
		}
		return start, err
	}
	<-f.ready
	if f.err != nil {
		return Start{}, f.err
	}
	passed := f.attach(w)
	st, start, err := l.decide(ctx, f.stream, from)
	if err != nil {
		return Start{}, err
	}
	w.from(start.Seq)
	return start, w.catchUp(ctx, st, f.subject, f.topic, passed)
}

// decide reads the stream's state (one round trip) and says where a
// watch from a Position starts.
func (l *Log) decide(ctx context.Context, s *stream, from Position) (jetstream.Stream, Start, error) {
	st, err := l.js.Stream(ctx, s.name)
	if err != nil {
		return nil, Start{}, err
	}
	info := st.CachedInfo()
	start := Start{Epoch: epochOf(info), Seq: info.State.LastSeq}
	// Limits retention drops events from the front only: every event after
	// from.Seq is still held when the first one held is at most from.Seq+1.
	held := from.Seq+1 >= info.State.FirstSeq && from.Seq <= info.State.LastSeq
	if from.Epoch != "" && from.Epoch == start.Epoch && held {
		start.Seq, start.Recovered = from.Seq, true
	}
	return st, start, nil
}

// feed is the ordered consumer of one watched topic, shared by its
// watchers.
type feed struct {
	subject, topic string
	stream         *stream
	ready          chan struct{} // closed once the first watcher opened the consumer (err set)
	err            error         // why the consumer could not be made
	consumer       jetstream.Consumer
	consume        jetstream.ConsumeContext
	joined         int // the watchers joined and not yet left; guarded by Log.mu

	mu       sync.Mutex // guards position and watchers
	position uint64     // the seq of the last event handed to the watchers
	watchers []*watcher // copied on change: delivery reads a snapshot
}

// join adds a watcher to the feed of subject, making it for the first.
func (l *Log) join(subject, topic string, s *stream) (f *feed, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f = l.feeds[subject]
	if f == nil {
		f = &feed{subject: subject, topic: topic, stream: s, ready: make(chan struct{})}
		l.feeds[subject] = f
		first = true
	}
	f.joined++
	return f, first
}

// leave takes a watcher off its feed; the last one out ends the feed and
// deletes its consumer (or, while the first watcher still opens it,
// leaves that to opened).
func (l *Log) leave(f *feed, w *watcher) {
	w.stop()
	f.detach(w)
	l.mu.Lock()
	f.joined--
	last := f.joined == 0
	if last && l.feeds[f.subject] == f {
		delete(l.feeds, f.subject)
	}
	l.mu.Unlock()
	if last {
		<-f.ready
		l.close(f)
	}
}

// forget takes a feed whose consumer could not be made out of the log,
// so that the next watcher tries again.
func (l *Log) forget(f *feed) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.feeds[f.subject] == f {
		delete(l.feeds, f.subject)
	}
}

// Watched returns how many topics the log watches now (one consumer
// each).
func (l *Log) Watched() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.feeds)
}

// open starts the feed's ordered consumer after the position the first
// watcher decided on.
func (f *feed) open(ctx context.Context, st jetstream.Stream) error {
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{f.subject},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       f.position + 1,
		InactiveThreshold: consumerInactivity,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(f.deliver)
	if err != nil {
		return err
	}
	f.consumer, f.consume = cons, cc
	return nil
}

// opened records the first watcher's outcome for the others.
func (f *feed) opened(err error) {
	f.err = err
	close(f.ready)
}

// close stops the feed's consumer and deletes it on the server (one not
// deleted, NATS being away, ends after consumerInactivity).
func (l *Log) close(f *feed) {
	if f.consume == nil {
		return
	}
	f.consume.Stop()
	<-f.consume.Closed()
	info := f.consumer.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	_ = l.js.DeleteConsumer(ctx, f.stream.name, info.Name)
}

// attach adds a watcher, not yet live, and returns the seq of the last
// event handed to the watchers before it: w gets every later one.
func (f *feed) attach(w *watcher) (passed uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watchers = append(append([]*watcher(nil), f.watchers...), w)
	return f.position
}

// detach takes a watcher off the feed.
func (f *feed) detach(w *watcher) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rest := make([]*watcher, 0, len(f.watchers))
	for _, o := range f.watchers {
		if o != w {
			rest = append(rest, o)
		}
	}
	f.watchers = rest
}

// deliver hands one event from the consumer to the watchers.
func (f *feed) deliver(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	ev := Event{Topic: f.topic, Seq: meta.Sequence.Stream, Data: m.Data(), Time: meta.Timestamp}
	f.mu.Lock()
	f.position = ev.Seq
	watchers := f.watchers // with position: a watcher attached later catches up to it
	f.mu.Unlock()
	for _, w := range watchers {
		w.offer(ev)
	}
}

// watcher is one local watcher of a topic.
type watcher struct {
	fn    func(Event)
	limit int // how many live events it holds while catching up

	mu        sync.Mutex // guards the fields below; held while fn runs
	live      bool       // caught up: events go to fn
	delivered uint64     // the seq of the last event handed to fn
	pending   []Event    // live events held while catching up
	dropped   bool       // pending overflowed: the catch-up goes to the end
	stopped   bool
}

// offer hands a live event to fn, or holds it while w catches up.
func (w *watcher) offer(ev Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.stopped:
	case !w.live && len(w.pending) >= w.limit:
		w.pending, w.dropped = nil, true
	case !w.live:
		w.pending = append(w.pending, ev)
	case ev.Seq > w.delivered:
		w.delivered = ev.Seq
		w.fn(ev)
	}
}

// catchUp reads the events after w.delivered up to the feed's position
// when w attached (passed), one round trip each, then hands over the held
// live events and goes live. When the held events overflowed meanwhile it
// reads on to the end of the stream and tries again.
func (w *watcher) catchUp(ctx context.Context, st jetstream.Stream, subject, topic string, passed uint64) error {
	until := passed
	for {
		for next := w.next(); next <= until; next = w.next() {
			m, err := st.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subject))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return err
			}
			w.hand(Event{Topic: topic, Seq: m.Sequence, Data: m.Data, Time: m.Time})
		}
		if w.goLive() {
			return nil
		}
		until = math.MaxUint64
	}
}

// from sets the seq w's events follow.
func (w *watcher) from(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.delivered = seq
}

// next is the seq to read from next.
func (w *watcher) next() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.delivered + 1
}

// hand gives fn an event read while catching up.
func (w *watcher) hand(ev Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped && ev.Seq > w.delivered {
		w.delivered = ev.Seq
		w.fn(ev)
	}
}

// goLive hands fn the held events after the ones read and makes w live;
// false (and nothing held) when the held events overflowed.
func (w *watcher) goLive() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped {
		w.dropped = false
		return false
	}
	for _, ev := range w.pending {
		if !w.stopped && ev.Seq > w.delivered {
			w.delivered = ev.Seq
			w.fn(ev)
		}
	}
	w.pending, w.live = nil, true
	return true
}

// stop ends deliveries to fn.
func (w *watcher) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.pending = nil
}
