package eventlog

import (
	"context"
	"errors"
	"math"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

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
func (w *watcher) catchUp(ctx context.Context, st jetstream.Stream, subject, topic, epoch string, passed uint64) error {
	until := passed
	for {
		for next := w.next(); next <= until; {
			m, err := st.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subject))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return err
			}
			if !w.hand(Event{Topic: topic, Epoch: epoch, Seq: m.Sequence, Data: m.Data, Header: m.Header, Time: m.Time}) {
				return nil // ended
			}
			next = m.Sequence + 1
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

// hand gives fn an event read while catching up; false once w is
// stopped.
func (w *watcher) hand(ev Event) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	if ev.Seq > w.delivered {
		w.delivered = ev.Seq
		w.fn(ev)
	}
	return true
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

// end hands fn the Ended event, the last it gets.
func (w *watcher) end(ev Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.stopped, w.pending = true, nil
		w.fn(ev)
	}
}

// stop ends deliveries to fn.
func (w *watcher) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.pending = nil
}
