package eventlog

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// feed is the ordered consumer of one watched topic, shared by its
// watchers.
type feed struct {
	subject, topic string
	stream         *stream
	epoch          string        // the stream's epoch when the consumer was made
	ready          chan struct{} // closed once the first watcher opened the consumer (epoch, consumer, err set)
	err            error         // why the consumer could not be made
	consumer       jetstream.Consumer
	consume        jetstream.ConsumeContext
	joined         int // the watchers joined and not yet left; guarded by Log.mu

	mu       sync.Mutex     // guards position, watchers, ended and closing
	position uint64         // the seq of the last event handed to the watchers
	watchers []*watcher     // copied on change: delivery reads a snapshot
	ended    bool           // the stream's epoch passed: no watcher is added
	closing  bool           // the last watcher left: no epoch check starts
	checks   sync.WaitGroup // the epoch checks running
	checking bool           // an epoch check is running
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
// deletes its consumer.
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

// forget takes a feed out of the log (its consumer could not be made, or
// its epoch passed), so that the next watcher of its topic makes another.
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
func (l *Log) open(ctx context.Context, f *feed, st jetstream.Stream) error {
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{f.subject},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       f.position + 1,
		InactiveThreshold: consumerInactivity,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(f.deliver, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		l.failed(f, err)
	}))
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

// failed hears of the consumer's errors. The client library makes the
// consumer again after most of them, from the last event it delivered;
// but when the consumer or its stream is gone the stream may have been
// deleted, and a stream made again starts its seqs again: a check of
// the epoch then runs (one at a time, on its own goroutine, since the
// library calls failed holding its own lock).
func (l *Log) failed(f *feed, err error) {
	if !errors.Is(err, jetstream.ErrConsumerDeleted) && !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing || f.ended || f.checking {
		return
	}
	f.checking = true
	f.checks.Add(1)
	go func() {
		defer f.checks.Done()
		<-f.ready // the error may come while open still makes the consumer
		l.checkEpoch(f)
		f.mu.Lock()
		f.checking = false
		f.mu.Unlock()
	}()
}

// checkEpoch ends the feed when its stream is gone or was made again.
func (l *Log) checkEpoch(f *feed) {
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	st, err := l.js.Stream(ctx, f.stream.name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return // NATS away: the library retries, and its next error checks again
	case epochOf(st.CachedInfo()) == f.epoch:
		return
	}
	l.end(f)
}

// end ends a feed whose stream's epoch passed: each watcher gets an
// Ended event and nothing after, the feed leaves the log (the topic's
// next watcher makes one of the current epoch), and its consumer stops
// (its last watcher's leave deletes it).
func (l *Log) end(f *feed) {
	l.forget(f)
	f.mu.Lock()
	if f.ended {
		f.mu.Unlock()
		return
	}
	f.ended = true
	watchers := f.watchers
	f.watchers = nil
	f.mu.Unlock()
	if f.consume != nil {
		f.consume.Stop()
	}
	for _, w := range watchers {
		w.end(Event{Topic: f.topic, Ended: true})
	}
}

// close stops the feed's consumer and deletes it on the server (one not
// deleted, NATS being away, ends after consumerInactivity), once the
// epoch checks are over.
func (l *Log) close(f *feed) {
	f.mu.Lock()
	f.closing = true
	f.mu.Unlock()
	f.checks.Wait()
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
	ev := Event{Topic: f.topic, Epoch: f.epoch, Seq: meta.Sequence.Stream, Data: m.Data(), Header: m.Headers(), Time: meta.Timestamp}
	f.mu.Lock()
	f.position = ev.Seq
	watchers := f.watchers // with position: a watcher attached later catches up to it
	f.mu.Unlock()
	for _, w := range watchers {
		w.offer(ev)
	}
}
