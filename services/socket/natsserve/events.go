package natsserve

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/services/socket/internal/carrier"
	"github.com/streamgate/streamgate/status"
)

// Storing events in JetStream (WithEvents): every event the server
// publishes goes into a queue (eventQueue long) in the order of its
// topic's seqs, and one goroutine stores the queued events one after the
// other, each acknowledged before the next is sent, so each topic's
// events are stored in the order they were published. Publish never waits
// for it: an event that finds the queue full is dropped and counted. The
// answer to a request that published waits (storeWait at most) until its
// events are stored: a caller's next write, perhaps on another instance,
// publishes after them, so a topic's events are stored in the order of
// the writes however many instances serve it.
const (
	// eventQueue is how many events wait to be stored.
	eventQueue = 4096
	// storeAttempts bounds how many times one event is sent; every
	// attempt carries the same message id, so JetStream stores it once
	// however many acknowledgements were lost.
	storeAttempts = 3
	// attemptTimeout bounds one attempt's wait for its acknowledgement.
	attemptTimeout = 2 * time.Second
	// retryDelay is the wait before the second attempt, doubled before
	// each later one.
	retryDelay = 100 * time.Millisecond
	// noStreamMemory is how long a topic's collection (its segments but
	// the last) that no stream held fails its events at once, instead of
	// asking JetStream again (which takes half a second to say no).
	noStreamMemory = time.Second
	// heldMemory is how long a collection a stream held is taken to be
	// held still before JetStream is asked again (a failed attempt asks at
	// once).
	heldMemory = 10 * time.Second
	// logEvery spaces the log lines about events not stored.
	logEvery = 10 * time.Second
	// storeWait bounds how long an answer waits for its request's events
	// to be stored (one attempt's wait).
	storeWait = attemptTimeout
)

// eventStore stores a server's events in JetStream (see WithEvents).
type eventStore struct {
	log      *eventlog.Log
	nc       *nats.Conn
	root     string
	frames   carrier.Frames
	id       carrier.Identity
	logger   *slog.Logger
	queue    chan carrier.Event
	ctx      context.Context // ends the attempts when the flush runs out of time
	cancel   context.CancelFunc
	done     chan struct{}        // closed when run returned
	noStream map[string]time.Time // collections no stream held, and when; run's own
	held     map[string]time.Time // collections a stream held, and when; run's own
	taken    uint64               // events run took from the queue; run's own
	offered  atomic.Uint64        // events queued so far

	settleMu sync.Mutex    // guards settled and progress
	settled  uint64        // events run is done with (stored or failed)
	progress chan struct{} // closed, and made again, when settled grows

	mu       sync.Mutex // guards the counts and when they were logged
	dropped  int
	failed   int
	loggedAt time.Time
}

// startEvents has f's events stored in JetStream through nc, under root,
// until the returned stop flushes them.
func startEvents(nc *nats.Conn, root string, f carrier.Frames, queue int) (store *eventStore, stop func(timeout time.Duration), err error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	var opts []eventlog.Option
	if root != "" {
		opts = append(opts, eventlog.WithRoot(root))
	}
	// With no windows the log only publishes, into the streams the
	// gateway made: opening it asks JetStream nothing.
	l, err := eventlog.Open(context.Background(), js, nil, opts...)
	if err != nil {
		return nil, nil, err
	}
	s := &eventStore{
		log: l, nc: nc, root: cmp.Or(root, eventlog.DefaultRoot), frames: f, id: f.Identity(), logger: f.Logger(),
		queue: make(chan carrier.Event, queue), done: make(chan struct{}), noStream: map[string]time.Time{}, held: map[string]time.Time{},
		progress: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	detach := f.Events(s.offer)
	return s, func(timeout time.Duration) {
		detach() // no more offers: the queue can close
		close(s.queue)
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-s.done:
		case <-timer.C:
			s.cancel() // what is left fails at once, counted
			<-s.done
		}
		s.cancel()
		s.report(true)
	}, nil
}

// offer queues an event, or drops it when the queue is full. It runs
// under the server's event lock and never blocks.
func (s *eventStore) offer(e carrier.Event) {
	select {
	case s.queue <- e:
		s.offered.Add(1)
	default:
		s.frames.CountEvent(carrier.EventDropped)
		s.mu.Lock()
		s.dropped++ // logged by run (report), off the publisher's path
		s.mu.Unlock()
	}
}

// run stores the queued events in order until the queue is closed and
// empty.
func (s *eventStore) run() {
	defer close(s.done)
	for e := range s.queue {
		s.taken++
		if err := s.store(e, s.taken); err != nil {
			s.frames.CountEvent(carrier.EventFailed)
			s.mu.Lock()
			s.failed++
			s.mu.Unlock()
			s.logger.Debug("natsserve: event not stored", "topic", e.Topic, "seq", e.Seq, "err", err)
		} else {
			s.frames.CountEvent(carrier.EventStored)
		}
		s.settleMu.Lock()
		s.settled++
		close(s.progress)
		s.progress = make(chan struct{})
		s.settleMu.Unlock()
		s.report(false)
	}
}

// queued returns how many events were queued so far (0 without a store).
func (s *eventStore) queued() uint64 {
	if s == nil {
		return 0
	}
	return s.offered.Load()
}

// awaitStored waits, storeWait at most, until the events queued since
// before (queued's) are stored or have failed: a request's, before its
// answer goes.
func (s *eventStore) awaitStored(before uint64) {
	if s == nil {
		return
	}
	n := s.offered.Load()
	if n == before {
		return // the request published nothing
	}
	timer := time.NewTimer(storeWait)
	defer timer.Stop()
	for {
		s.settleMu.Lock()
		settled, progress := s.settled, s.progress
		s.settleMu.Unlock()
		if settled >= n {
			return
		}
		select {
		case <-progress:
		case <-timer.C:
			return
		case <-s.done:
			return
		}
	}
}

// errNoStream says no stream holds a topic's subject.
var errNoStream = errors.New("no JetStream stream holds the topic's subject (the gateway makes the streams of its event windows)")

// store sends one event, the nth the store took, until JetStream
// acknowledges it, at most storeAttempts times; every attempt carries the
// same message id. A topic no stream holds is not retried.
func (s *eventStore) store(e carrier.Event, n uint64) error {
	collection := collectionOf(e.Topic)
	if at, ok := s.noStream[collection]; ok {
		if time.Since(at) < noStreamMemory {
			return s.sendUnstored(e)
		}
		delete(s.noStream, collection)
	}
	m := eventlog.Message{Topic: e.Topic, Data: e.Data, ID: s.messageID(n), Header: s.header(e)}
	delay := retryDelay
	for attempt := 1; ; attempt++ {
		if at, ok := s.held[collection]; !ok || time.Since(at) >= heldMemory {
			// A subscriber of the subject over NATS would take an event
			// no stream holds without a "no stream" answer: ask first.
			if !s.holds(e.Topic, collection) {
				remember(s.noStream, collection)
				return s.sendUnstored(e)
			}
		}
		ctx, cancel := context.WithTimeout(s.ctx, attemptTimeout)
		_, err := s.log.PublishMsg(ctx, m)
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrNoStreamResponse):
			delete(s.held, collection)
			remember(s.noStream, collection)
			return errNoStream
		case attempt == storeAttempts || s.ctx.Err() != nil || status.CodeOf(err) == status.CodeInvalidArgument:
			return err
		}
		delete(s.held, collection) // the stream may be gone: ask again
		select {
		case <-time.After(delay):
		case <-s.ctx.Done():
		}
		delay *= 2
	}
}

// holds says whether a stream holds topic's subject, and remembers a yes
// for collection; when JetStream cannot tell, it says yes (the attempt
// will tell).
func (s *eventStore) holds(topic, collection string) bool {
	ctx, cancel := context.WithTimeout(s.ctx, attemptTimeout)
	held, err := s.log.Holds(ctx, topic)
	cancel()
	if err != nil {
		return true
	}
	if held {
		remember(s.held, collection)
	}
	return held
}

// sendUnstored sends an event no stream holds on its subject all the
// same, for the callers subscribed to it over NATS, and reports it not
// stored.
func (s *eventStore) sendUnstored(e carrier.Event) error {
	_ = s.nc.PublishMsg(&nats.Msg{Subject: eventlog.Subject(s.root, e.Topic), Data: e.Data, Header: s.header(e)})
	return errNoStream
}

// remember notes now for collection in m, bounded by eventQueue entries.
func remember(m map[string]time.Time, collection string) {
	if len(m) >= eventQueue {
		clear(m)
	}
	m[collection] = time.Now()
}

// messageID de-duplicates the attempts of the nth event the store took:
// SERVICE/INSTANCE/N. Not the topic's seq: a server that forgets its
// topics' seqs (past socket's bound on topics) starts them again from 1,
// and a repeated id within JetStream's de-duplication window would have
// the later event silently not stored.
func (s *eventStore) messageID(n uint64) string {
	return s.id.Name + "/" + s.id.Instance + "/" + strconv.FormatUint(n, 10)
}

// header is what travels beside an event's data (docs/protocol.md §10).
func (s *eventStore) header(e carrier.Event) nats.Header {
	return nats.Header{
		eventlog.HeaderTopic:      {e.Topic},
		eventlog.HeaderService:    {s.id.Name},
		eventlog.HeaderVisibility: {string(e.Visibility)},
		eventlog.HeaderInstance:   {s.id.Instance},
		eventlog.HeaderSeq:        {strconv.FormatUint(e.Seq, 10)},
	}
}

// collectionOf is a topic's segments but the last ("orders/o1" →
// "orders"), or the topic when it has one segment: the topics of a
// collection share one stream unless a window is a single topic.
func collectionOf(topic string) string {
	if i := strings.LastIndexByte(topic, '/'); i > 0 {
		return topic[:i]
	}
	return topic
}

// report logs the events dropped and not stored since the last line, at
// most once per logEvery unless final.
func (s *eventStore) report(final bool) {
	s.mu.Lock()
	if s.dropped+s.failed == 0 || (!final && time.Since(s.loggedAt) < logEvery) {
		s.mu.Unlock()
		return
	}
	dropped, failed := s.dropped, s.failed
	s.dropped, s.failed, s.loggedAt = 0, 0, time.Now()
	s.mu.Unlock()
	s.logger.Warn("natsserve: events not stored in JetStream (direct subscribers still got them)",
		"dropped_queue_full", dropped, "failed", failed, "queue", cap(s.queue))
}
