package eventlog_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/status"
)

// streamName is the stream a log under root keeps a window's events in.
func streamName(root, prefix string) string {
	return strings.ToUpper(strings.ReplaceAll(root, ".", "_")) + "_" + prefix
}

// collector gathers a watcher's events and signals when one reaches a
// seq.
type collector struct {
	mu     sync.Mutex // guards events, wait
	events []eventlog.Event
	wait   map[uint64]chan struct{} // closed when an event at or past the seq comes
}

func newCollector() *collector { return &collector{wait: map[uint64]chan struct{}{}} }

func (c *collector) add(e eventlog.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
	for seq, ch := range c.wait {
		if e.Seq >= seq {
			close(ch)
			delete(c.wait, seq)
		}
	}
}

// reached returns a channel closed once an event at or past seq came.
func (c *collector) reached(seq uint64) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if n := len(c.events); n > 0 && c.events[n-1].Seq >= seq {
		close(ch)
		return ch
	}
	c.wait[seq] = ch
	return ch
}

func (c *collector) seqs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]uint64, len(c.events))
	for i, e := range c.events {
		out[i] = e.Seq
	}
	return out
}

// await fails the test unless ch closes within a bound.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// publisher publishes events of topic at a steady rate, with an event of
// another topic of the window between each two (so the topic's seqs have
// gaps), and records the topic's seqs.
type publisher struct {
	mu   sync.Mutex // guards seqs
	seqs []uint64
}

// run publishes every period until n events of topic are stored, sending
// each seq on progress (when not nil, without blocking).
func (p *publisher) run(ctx context.Context, l *eventlog.Log, topic, other string, n int, period time.Duration, progress chan<- uint64) error {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for i := range n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if _, err := l.Publish(ctx, other, []byte(`{"other":true}`), ""); err != nil {
			return err
		}
		seq, err := l.Publish(ctx, topic, fmt.Appendf(nil, `{"i":%d}`, i), "")
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.seqs = append(p.seqs, seq)
		p.mu.Unlock()
		select {
		case progress <- seq:
		default:
		}
	}
	return nil
}

func (p *publisher) all() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uint64(nil), p.seqs...)
}

// TestResumeUnderLoad: a watcher leaves while 500 events/s are published
// on its topic, comes back from the last seq it saw and gets every event
// after it exactly once, in order, with no gap: alone on the topic (its
// own consumer reads the backlog), beside a watcher that kept the topic's
// consumer running (the missed events are read one by one), and on
// another gateway. With room for two live events while it reads the
// missed ones, the watcher drops the live ones and reads on to the end.
func TestResumeUnderLoad(t *testing.T) {
	for _, resume := range []string{"alone", "beside a watcher", "beside a watcher, holding two", "on another gateway"} {
		t.Run(resume, func(t *testing.T) {
			onNATS(t, func(t *testing.T, url string) {
				root := testRoot(t, url)
				window := eventlog.Window{Prefix: "orders", MaxAge: time.Minute}
				a := openGateway(t, url, root, window)
				b := openGateway(t, url, root, window)
				ctx := t.Context()

				before := newCollector()
				start, stop, err := a.log.Watch(ctx, "orders/o1", eventlog.Position{}, before.add)
				if err != nil {
					t.Fatal(err)
				}
				if start.Recovered {
					t.Fatalf("a first watch recovered: %+v", start)
				}
				if resume == "beside a watcher, holding two" {
					eventlog.SetPendingLimit(a.log, 2)
				}
				if strings.HasPrefix(resume, "beside a watcher") {
					_, stopOther, err := a.log.Watch(ctx, "orders/o1", eventlog.Position{}, func(eventlog.Event) {})
					if err != nil {
						t.Fatal(err)
					}
					defer stopOther()
				}

				// 500 events/s on orders/o1 for 2 s (1,000 events), and as many on orders/o2.
				var pub publisher
				progress := make(chan uint64, 1)
				published := make(chan error, 1)
				go func() { published <- pub.run(ctx, a.log, "orders/o1", "orders/o2", 1000, 2*time.Millisecond, progress) }()

				// Leave after the 200th event, come back once 300 more were published.
				var left uint64
				for left == 0 {
					if seqs := pub.all(); len(seqs) >= 200 {
						await(t, before.reached(seqs[199]), "the 200th event")
						stop()
						got := before.seqs()
						left = got[len(got)-1]
						break
					}
					<-progress
				}
				for len(pub.all()) < 500 {
					<-progress
				}
				reader := a
				if resume == "on another gateway" {
					reader = b
				}
				after := newCollector()
				missed := len(pub.all()) - len(before.seqs())
				resumed := time.Now()
				back, stopBack, err := reader.log.Watch(ctx, "orders/o1", eventlog.Position{Epoch: start.Epoch, Seq: left}, after.add)
				if err != nil {
					t.Fatal(err)
				}
				defer stopBack()
				if !back.Recovered || back.Seq != left || back.Epoch != start.Epoch {
					t.Fatalf("resume from %d: %+v, want recovered from it", left, back)
				}
				caughtUp := after.reached(pub.all()[len(before.seqs())+missed-1])
				await(t, caughtUp, "the missed events")
				t.Logf("resumed %d missed events in %v", missed, time.Since(resumed))
				if err := <-published; err != nil {
					t.Fatal(err)
				}
				want := pub.all()
				await(t, after.reached(want[len(want)-1]), "the last event")

				got := append(before.seqs(), after.seqs()...)
				if len(got) != len(want) {
					t.Fatalf("got %d events, want %d", len(got), len(want))
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("event %d: seq %d, want %d (each published event once, in order)", i, got[i], want[i])
					}
				}
			})
		})
	}
}

// TestTwoGatewaysAgree: two readers of the log (as two gateways, each its
// own connection) see the same events with the same seqs in the same
// order, whichever of them published.
func TestTwoGatewaysAgree(t *testing.T) {
	onNATS(t, func(t *testing.T, url string) {
		root := testRoot(t, url)
		window := eventlog.Window{Prefix: "items", MaxBytes: 1 << 20}
		a := openGateway(t, url, root, window)
		b := openGateway(t, url, root, window)
		seen := [2]*collector{newCollector(), newCollector()}
		for i, g := range []*gateway{a, b} {
			_, stop, err := g.log.Watch(t.Context(), "items/i7", eventlog.Position{}, seen[i].add)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
		}
		var last uint64
		for i := range 200 {
			g := []*gateway{a, b}[i%2]
			seq, err := g.log.Publish(t.Context(), "items/i7", fmt.Appendf(nil, `{"n":%d}`, i), "")
			if err != nil {
				t.Fatal(err)
			}
			if seq <= last {
				t.Fatalf("publish %d: seq %d after %d", i, seq, last)
			}
			last = seq
		}
		await(t, seen[0].reached(last), "gateway a's last event")
		await(t, seen[1].reached(last), "gateway b's last event")
		sa, sb := seen[0].seqs(), seen[1].seqs()
		if len(sa) != 200 || fmt.Sprint(sa) != fmt.Sprint(sb) {
			t.Fatalf("the gateways disagree:\na: %v\nb: %v", sa, sb)
		}
		seen[0].mu.Lock()
		defer seen[0].mu.Unlock()
		seen[1].mu.Lock()
		defer seen[1].mu.Unlock()
		for i := range seen[0].events {
			if string(seen[0].events[i].Data) != string(seen[1].events[i].Data) {
				t.Fatalf("event %d: %s on a, %s on b", i, seen[0].events[i].Data, seen[1].events[i].Data)
			}
		}
	})
}

// TestResumePastWindow: a watcher coming back from a seq the window no
// longer holds (the stream's bytes limit dropped it) is told at once that
// it was not recovered, with the current seq, in one round trip to
// JetStream when the topic is watched already; it then gets the events
// after that seq.
func TestResumePastWindow(t *testing.T) {
	onNATS(t, func(t *testing.T, url string) {
		root := testRoot(t, url)
		g := openGateway(t, url, root, eventlog.Window{Prefix: "orders", MaxBytes: 4096})
		ctx := t.Context()
		epoch, err := g.log.Epoch(ctx, "orders/o1")
		if err != nil {
			t.Fatal(err)
		}
		_, stop, err := g.log.Watch(ctx, "orders/o1", eventlog.Position{}, func(eventlog.Event) {})
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		var last uint64
		for i := range 200 {
			if last, err = g.log.Publish(ctx, "orders/o1", fmt.Appendf(nil, `{"i":%d,"pad":"%0100d"}`, i, 0), ""); err != nil {
				t.Fatal(err)
			}
		}

		requests := g.nc.Stats().OutMsgs
		seen := newCollector()
		start, stopBack, err := g.log.Watch(ctx, "orders/o1", eventlog.Position{Epoch: epoch, Seq: 1}, seen.add)
		if err != nil {
			t.Fatal(err)
		}
		defer stopBack()
		if n := g.nc.Stats().OutMsgs - requests; n != 1 {
			t.Errorf("the watch sent %d messages to NATS, want 1 (the stream's state)", n)
		}
		if start.Recovered || start.Seq != last || start.Epoch != epoch {
			t.Fatalf("resume from a dropped seq: %+v, want not recovered at %d", start, last)
		}
		next, err := g.log.Publish(ctx, "orders/o1", []byte(`{"after":true}`), "")
		if err != nil {
			t.Fatal(err)
		}
		await(t, seen.reached(next), "the event after the resume")
		if got := seen.seqs(); len(got) != 1 || got[0] != next {
			t.Fatalf("after an unrecovered resume at %d: %v, want [%d]", last, got, next)
		}
	})
}

// TestEpochChanges: once the stream is deleted and made again its seqs
// start again, so a Position of the old stream is not recovered, even
// when its seq is in the new stream's range.
func TestEpochChanges(t *testing.T) {
	onNATS(t, func(t *testing.T, url string) {
		root := testRoot(t, url)
		window := eventlog.Window{Prefix: "orders", MaxAge: time.Hour}
		g := openGateway(t, url, root, window)
		ctx := t.Context()
		old, err := g.log.Epoch(ctx, "orders/o1")
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := g.log.Publish(ctx, "orders/o1", []byte(`{}`), ""); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.js.DeleteStream(ctx, streamName(root, "orders")); err != nil {
			t.Fatal(err)
		}
		again := openGateway(t, url, root, window)
		for range 5 {
			if _, err := again.log.Publish(ctx, "orders/o1", []byte(`{}`), ""); err != nil {
				t.Fatal(err)
			}
		}
		start, stop, err := again.log.Watch(ctx, "orders/o1", eventlog.Position{Epoch: old, Seq: 2}, func(eventlog.Event) {})
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		if start.Recovered || start.Epoch == old || start.Seq != 5 {
			t.Fatalf("resume in the old epoch %s: %+v, want not recovered, a new epoch, seq 5", old, start)
		}
	})
}

// TestPublishOnce: a publish retried with the same id is stored once and
// answers the first one's seq.
func TestPublishOnce(t *testing.T) {
	onNATS(t, func(t *testing.T, url string) {
		root := testRoot(t, url)
		g := openGateway(t, url, root, eventlog.Window{Prefix: "orders", MaxAge: time.Hour})
		ctx := t.Context()
		first, err := g.log.Publish(ctx, "orders/o1", []byte(`{"paid":true}`), "pay-o1-1")
		if err != nil {
			t.Fatal(err)
		}
		retried, err := g.log.Publish(ctx, "orders/o1", []byte(`{"paid":true}`), "pay-o1-1")
		if err != nil {
			t.Fatal(err)
		}
		other, err := g.log.Publish(ctx, "orders/o1", []byte(`{"shipped":true}`), "ship-o1-1")
		if err != nil {
			t.Fatal(err)
		}
		if retried != first || other != first+1 {
			t.Fatalf("seqs %d, %d (retried), %d: want the retry to be the first, stored once", first, retried, other)
		}
		s, err := g.js.Stream(ctx, streamName(root, "orders"))
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n != 2 {
			t.Fatalf("the stream holds %d events, want 2", n)
		}
	})
}

// TestTopicsChecked: topics outside the rules of docs/protocol.md, or
// under no window, are refused with INVALID_ARGUMENT before NATS is
// asked; windows that overlap are refused.
func TestTopicsChecked(t *testing.T) {
	url := embeddedNATS(t)
	root := testRoot(t, url)
	g := openGateway(t, url, root, eventlog.Window{Prefix: "orders"}, eventlog.Window{Prefix: "items/eu"})
	for _, topic := range []string{"", "orders//o1", "orders/*", "orders/o 1", "items/us/i1", "users/u1", strings.Repeat("a", 257)} {
		_, err := g.log.Publish(t.Context(), topic, nil, "")
		if status.CodeOf(err) != status.CodeInvalidArgument {
			t.Errorf("publish on %q: %v, want INVALID_ARGUMENT", topic, err)
		}
		_, _, err = g.log.Watch(t.Context(), topic, eventlog.Position{}, func(eventlog.Event) {})
		if status.CodeOf(err) != status.CodeInvalidArgument {
			t.Errorf("watch of %q: %v, want INVALID_ARGUMENT", topic, err)
		}
	}
	for _, topic := range []string{"orders", "orders/o.1", "orders/a>b/c%d", "items/eu/i1", "orders/ünïcode"} {
		if _, err := g.log.Publish(t.Context(), topic, nil, ""); err != nil {
			t.Errorf("publish on %q: %v", topic, err)
		}
	}
	if _, err := eventlog.Open(t.Context(), g.js, []eventlog.Window{{Prefix: "orders"}, {Prefix: "orders/eu"}}); err == nil {
		t.Error("overlapping windows opened")
	}
}

// TestNoLeak: 10,000 watches and unwatches (each the topic's only
// watcher, or one beside a watcher that stays) leave no goroutine behind
// and the stream's consumers as they were.
func TestNoLeak(t *testing.T) {
	defer goleak.VerifyNone(t)
	onNATS(t, func(t *testing.T, url string) {
		root := testRoot(t, url)
		g := openGateway(t, url, root, eventlog.Window{Prefix: "orders", MaxAge: time.Hour})
		ctx := t.Context()
		if _, err := g.log.Publish(ctx, "orders/o1", []byte(`{}`), ""); err != nil {
			t.Fatal(err)
		}
		baseline := consumers(t, g, streamName(root, "orders"))
		_, stayStop, err := g.log.Watch(ctx, "orders/o2", eventlog.Position{}, func(eventlog.Event) {})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10_000 {
			topic := "orders/o2" // shares the staying watcher's consumer
			if i%10 == 0 {
				topic = "orders/o1" // makes and deletes a consumer of its own
			}
			_, stop, err := g.log.Watch(ctx, topic, eventlog.Position{}, func(eventlog.Event) {})
			if err != nil {
				t.Fatal(err)
			}
			stop()
		}
		stayStop()
		if n := g.log.Watched(); n != 0 {
			t.Errorf("%d topics still watched", n)
		}
		if n := consumers(t, g, streamName(root, "orders")); n != baseline {
			t.Errorf("%d consumers, want %d as before", n, baseline)
		}
	})
}

// watchEnd watches a topic from now on until the test ends, and returns
// a channel closed when the watch gets an Ended event.
func watchEnd(t *testing.T, l *eventlog.Log, topic string) (eventlog.Start, <-chan struct{}) {
	t.Helper()
	ended := make(chan struct{})
	start, stop, err := l.Watch(t.Context(), topic, eventlog.Position{}, func(e eventlog.Event) {
		if e.Ended {
			close(ended)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return start, ended
}

// TestStreamDeletedWhileWatched: the watchers of a topic whose stream is
// deleted get an Ended event and nothing after; a watch once the stream
// is made again is of the new epoch, and gets its events.
func TestStreamDeletedWhileWatched(t *testing.T) {
	onNATS(t, func(t *testing.T, url string) {
		root := testRoot(t, url)
		window := eventlog.Window{Prefix: "orders", MaxAge: time.Hour}
		g := openGateway(t, url, root, window)
		ctx := t.Context()
		first, ended := watchEnd(t, g.log, "orders/o1")
		_, endedToo := watchEnd(t, g.log, "orders/o1")
		if err := g.js.DeleteStream(ctx, streamName(root, "orders")); err != nil {
			t.Fatal(err)
		}
		await(t, ended, "the first watcher's end")
		await(t, endedToo, "the second watcher's end")
		if n := g.log.Watched(); n != 0 {
			t.Errorf("%d topics watched after their stream ended", n)
		}

		again := openGateway(t, url, root, window)
		seen := newCollector()
		start, stop, err := g.log.Watch(ctx, "orders/o1", eventlog.Position{Epoch: first.Epoch, Seq: first.Seq}, seen.add)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		if start.Recovered || start.Epoch == first.Epoch {
			t.Fatalf("a watch after the stream was made again: %+v, want a new epoch, not recovered", start)
		}
		seq, err := again.log.Publish(ctx, "orders/o1", []byte(`{"new":true}`), "")
		if err != nil {
			t.Fatal(err)
		}
		await(t, seen.reached(seq), "the new stream's event")
	})
}

// TestNATSRestart: across a restart of the NATS server the epoch stays
// (the stream is the same), a publish retried with its id until the
// server is back is stored once, and a watcher gets every event once, in
// order: its consumer is made again from the last event it delivered.
func TestNATSRestart(t *testing.T) {
	url, restart := restartableNATS(t)
	root := testRoot(t, url)
	g := openGateway(t, url, root, eventlog.Window{Prefix: "orders", MaxAge: time.Hour})
	ctx := t.Context()
	seen := newCollector()
	start, stop, err := g.log.Watch(ctx, "orders/o1", eventlog.Position{}, seen.add)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	var want []uint64
	publish := func(i int) {
		t.Helper()
		for {
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			seq, err := g.log.Publish(pctx, "orders/o1", fmt.Appendf(nil, `{"i":%d}`, i), fmt.Sprint("event-", i))
			cancel()
			if err == nil {
				want = append(want, seq)
				return
			}
			if code := status.CodeOf(err); code != status.CodeUnavailable && code != status.CodeDeadlineExceeded {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	for i := range 50 {
		publish(i)
	}
	await(t, seen.reached(want[len(want)-1]), "the events before the restart")
	restart()
	for i := 50; i < 100; i++ {
		publish(i)
	}
	await(t, seen.reached(want[len(want)-1]), "the events after the restart")
	if got := seen.seqs(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("across the restart the watcher got\n%v\nwant\n%v", got, want)
	}
	epoch, err := g.log.Epoch(ctx, "orders/o1")
	if err != nil {
		t.Fatal(err)
	}
	if epoch != start.Epoch {
		t.Fatalf("the epoch changed across a restart: %s, then %s", start.Epoch, epoch)
	}
}

// TestStreamMadeAgainAtOnce: a watch that comes while the topic's feed is
// still of a stream deleted and made again at once is of the new epoch
// and is not ended with the old feed's watchers.
func TestStreamMadeAgainAtOnce(t *testing.T) {
	onNATS(t, func(t *testing.T, url string) {
		root := testRoot(t, url)
		window := eventlog.Window{Prefix: "orders", MaxAge: time.Hour}
		g := openGateway(t, url, root, window)
		ctx := t.Context()
		old, ended := watchEnd(t, g.log, "orders/o1")
		if err := g.js.DeleteStream(ctx, streamName(root, "orders")); err != nil {
			t.Fatal(err)
		}
		again := openGateway(t, url, root, window)

		seen := newCollector()
		start, stop, err := g.log.Watch(ctx, "orders/o1", eventlog.Position{}, seen.add)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		if start.Epoch == old.Epoch {
			t.Fatalf("a watch after the stream was made again has the old epoch %s", old.Epoch)
		}
		await(t, ended, "the old watch's end")
		seq, err := again.log.Publish(ctx, "orders/o1", []byte(`{"new":true}`), "")
		if err != nil {
			t.Fatal(err)
		}
		await(t, seen.reached(seq), "the new stream's event")
		seen.mu.Lock()
		defer seen.mu.Unlock()
		for _, e := range seen.events {
			if e.Ended {
				t.Fatalf("the new watch was ended: %+v", seen.events)
			}
		}
	})
}

// TestOpenAgain: opening the log again with other limits updates the
// window's stream in place: its epoch and events stay.
func TestOpenAgain(t *testing.T) {
	onNATS(t, func(t *testing.T, url string) {
		root := testRoot(t, url)
		g := openGateway(t, url, root, eventlog.Window{Prefix: "orders", MaxAge: time.Hour})
		ctx := t.Context()
		seq, err := g.log.Publish(ctx, "orders/o1", []byte(`{}`), "")
		if err != nil {
			t.Fatal(err)
		}
		epoch, err := g.log.Epoch(ctx, "orders/o1")
		if err != nil {
			t.Fatal(err)
		}
		again := openGateway(t, url, root, eventlog.Window{Prefix: "orders", MaxAge: 2 * time.Hour, MaxBytes: 1 << 20})
		start, stop, err := again.log.Watch(ctx, "orders/o1", eventlog.Position{Epoch: epoch, Seq: seq - 1}, func(eventlog.Event) {})
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		if !start.Recovered || start.Epoch != epoch {
			t.Fatalf("after the window changed: %+v, want epoch %s recovered", start, epoch)
		}
		s, err := again.js.Stream(ctx, streamName(root, "orders"))
		if err != nil {
			t.Fatal(err)
		}
		if cfg := s.CachedInfo().Config; cfg.MaxAge != 2*time.Hour || cfg.MaxBytes != 1<<20 {
			t.Fatalf("the stream's limits: max age %v, max bytes %d", cfg.MaxAge, cfg.MaxBytes)
		}
	})
}

// TestPublisherWithoutWindows: a Log opened with no windows (a service's)
// stores events in the streams a watching Log made, with their headers;
// a topic no stream holds is UNAVAILABLE, and JetStream's own headers
// are refused.
func TestPublisherWithoutWindows(t *testing.T) {
	onNATS(t, func(t *testing.T, url string) {
		root := testRoot(t, url)
		g := openGateway(t, url, root, eventlog.Window{Prefix: "orders", MaxAge: time.Hour})
		service := openGateway(t, url, root)
		got := newCollector()
		_, stop, err := g.log.Watch(t.Context(), "orders/o1", eventlog.Position{}, got.add)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		msg := eventlog.Message{
			Topic: "orders/o1", Data: []byte(`{"paid":true}`), ID: "o1-1",
			Header: nats.Header{"Streamgate-Visibility": []string{`{"public":true}`}},
		}
		seq, err := service.log.PublishMsg(t.Context(), msg)
		if err != nil {
			t.Fatal(err)
		}
		// A retry sends the same message again: the store keeps one.
		again, err := service.log.PublishMsg(t.Context(), msg)
		if err != nil || again != seq {
			t.Fatalf("the same message again: seq %d, %v; want seq %d (the first's)", again, err, seq)
		}
		if len(msg.Header) != 1 {
			t.Errorf("the message's header after publishing: %v; want the caller's map unchanged", msg.Header)
		}
		await(t, got.reached(seq), "the service's event")
		got.mu.Lock()
		ev := got.events[0]
		got.mu.Unlock()
		if string(ev.Data) != `{"paid":true}` || ev.Header.Get("Streamgate-Visibility") != `{"public":true}` || ev.Header.Get("Nats-Msg-Id") != "o1-1" {
			t.Fatalf("event %s with header %v: want the data and the headers published", ev.Data, ev.Header)
		}
		if _, err := service.log.Publish(t.Context(), "users/u1", []byte(`{}`), ""); status.CodeOf(err) != status.CodeUnavailable {
			t.Errorf("publish under no stream: %v, want UNAVAILABLE", err)
		}
		_, err = service.log.PublishMsg(t.Context(), eventlog.Message{Topic: "orders/o1", Header: nats.Header{"Nats-Expected-Stream": []string{"x"}}})
		if status.CodeOf(err) != status.CodeInvalidArgument {
			t.Errorf("publish with a Nats- header: %v, want INVALID_ARGUMENT", err)
		}
	})
}

// TestEnsure: Ensure makes a deleted window's stream again, in a new
// epoch, and changes nothing while it exists.
func TestEnsure(t *testing.T) {
	onNATS(t, func(t *testing.T, url string) {
		root := testRoot(t, url)
		g := openGateway(t, url, root, eventlog.Window{Prefix: "orders", MaxAge: time.Hour})
		ctx := t.Context()
		old, err := g.log.Epoch(ctx, "orders/o1")
		if err != nil {
			t.Fatal(err)
		}
		if err := g.log.Ensure(ctx, "orders/o1"); err != nil {
			t.Fatal(err)
		}
		if same, err := g.log.Epoch(ctx, "orders/o1"); err != nil || same != old {
			t.Fatalf("epoch after Ensure of a stream that exists: %q, %v; want %q", same, err, old)
		}
		if err := g.js.DeleteStream(ctx, streamName(root, "orders")); err != nil {
			t.Fatal(err)
		}
		if err := g.log.Ensure(ctx, "orders/o1"); err != nil {
			t.Fatal(err)
		}
		if now, err := g.log.Epoch(ctx, "orders/o1"); err != nil || now == old {
			t.Fatalf("epoch after Ensure of a deleted stream: %q, %v; want a new one", now, err)
		}
		if err := g.log.Ensure(ctx, "users/u1"); err == nil {
			t.Error("Ensure of a topic under no window: no error")
		}
	})
}
