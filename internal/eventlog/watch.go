package eventlog

import (
	"context"
	"errors"
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
// watcher leaves (a consumer not deleted ends on its inactivity timeout),
// and reading the stream's epoch when the consumer fails.
const teardownTimeout = 5 * time.Second

// errEpochPassed says that a topic's feed belongs to a stream deleted
// since (its watchers are told Ended).
var errEpochPassed = errors.New("eventlog: the stream was made again")

// consumerInactivity is how long JetStream keeps a feed's consumer that
// nobody reads (a gateway that died without deleting it).
const consumerInactivity = time.Minute

// Watch hands fn the events of topic after from, in seq order, each
// once, then the live ones as they are stored, until stop is called or
// ctx ends. The returned Start says whether from was recovered and which
// seq the events follow; with a zero from, the events stored from now on.
// Deciding takes one round trip to JetStream. Before Watch returns, the
// first watch of a topic on this Log then makes the topic's consumer (one
// more), and a recovered watch of a topic the Log already watches reads
// the events its consumer has passed, one round trip each.
//
// When the topic's stream is deleted (and perhaps made again) while it is
// watched, fn gets an Event with Ended set, and no more: the watch is
// over, and a new one starts in the stream's new epoch.
//
// All the watchers of a topic share one ordered consumer. fn runs on the
// consumer's goroutine (or, while Watch catches up, the caller's), one
// call at a time, possibly before Watch returns; it must not block, must
// not call stop (stop waits for a running fn), and must not change the
// Event's Data. fn is not called once stop has returned; stop also waits
// for the topic's consumer to be deleted when its last watcher leaves.
func (l *Log) Watch(ctx context.Context, topic string, from Position, fn func(Event)) (Start, func(), error) {
	subject, s, err := l.locate(topic)
	if err != nil {
		return Start{}, nil, err
	}
	f, first := l.join(subject, topic, s)
	w := &watcher{fn: fn, limit: l.pendingLimit}
	start, err := l.begin(ctx, f, first, from, w)
	if errors.Is(err, errEpochPassed) {
		// The feed was of the stream's previous epoch: it has ended (its
		// watchers told), and the next one is of the current epoch.
		l.leave(f, w)
		f, first = l.join(subject, topic, s)
		w = &watcher{fn: fn, limit: l.pendingLimit}
		start, err = l.begin(ctx, f, first, from, w)
	}
	if err != nil {
		l.leave(f, w)
		return Start{}, nil, unavailable(err, "the events of %q cannot be watched now", topic)
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
			f.epoch, f.position = start.Epoch, start.Seq
			f.attach(w)
			w.live, w.delivered = true, start.Seq
			err = l.open(ctx, f, st)
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
	if start.Epoch != f.epoch {
		f.detach(w) // w is watched again: only the feed's other watchers end
		l.end(f)
		return Start{}, errEpochPassed
	}
	w.from(start.Seq)
	return start, w.catchUp(ctx, st, f.subject, f.topic, f.epoch, passed)
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
