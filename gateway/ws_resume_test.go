package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/socket"
)

// subscribedShop starts a shop (windows as startEventsShop takes them)
// with one gateway, and an admin's socket subscribed to topic.
func subscribedShop(t *testing.T, windows, topic string) (*eventsShop, *httptest.Server, *wsClient, subscribeAnswer) {
	t.Helper()
	shop := keepEveryEvent(t, startEventsShop(t, eventsNATS(t), windows))
	_, ts := shop.gateway(t)
	c := shopSocket(t, ts, bearer(adminKey)...)
	return shop, ts, c, c.subscribe(topic, "")
}

// frameIDs numbers the test's subscribe frames.
var frameIDs atomic.Uint64

// subscribeAnswer is a subscribe's result.
type subscribeAnswer struct {
	Seq       uint64 `json:"seq"`
	Epoch     string `json:"epoch"`
	Recovered bool   `json:"recovered"`
}

// subscribe sends a subscribe frame (extra: more fields, e.g. since) and
// decodes its answer.
func (w *wsClient) subscribe(topic, extra string) subscribeAnswer {
	w.t.Helper()
	// An id of its own: a frame's id stays in flight a moment after its
	// answer.
	id := frameIDs.Add(1)
	f := w.request(fmt.Sprintf(`{"type":"subscribe","id":"s%d","topic":%q%s}`, id, topic, extra))
	var a subscribeAnswer
	if f.Status != 200 || json.Unmarshal(f.Result, &a) != nil {
		w.t.Fatalf("subscribe: %s", f.raw)
	}
	return a
}

// eventFrame is an event frame with its epoch.
type eventFrame struct {
	Type  string          `json:"type"`
	Seq   uint64          `json:"seq"`
	Epoch string          `json:"epoch"`
	Data  json.RawMessage `json:"data"`
}

// eventReader checks that a topic's events come each once, in order: n
// one more than the last, seq higher, epoch the same.
type eventReader struct {
	t       *testing.T
	lastN   int
	lastSeq uint64
	epoch   string
}

// readUntil reads events from c until the one with n == until (bounded),
// or until the socket fails (false: a disconnect the test asked for).
func (r *eventReader) readUntil(c *wsClient, until int) {
	r.t.Helper()
	for r.lastN < until {
		_, b, err := readRaw(c, 20*time.Second)
		if err != nil {
			r.t.Fatalf("after event n=%d seq=%d: %v", r.lastN, r.lastSeq, err)
		}
		r.check(b)
	}
}

// check checks one frame.
func (r *eventReader) check(b []byte) {
	r.t.Helper()
	var f eventFrame
	var d struct{ N int }
	if json.Unmarshal(b, &f) != nil || f.Type != "event" || json.Unmarshal(f.Data, &d) != nil {
		r.t.Fatalf("after n=%d: %s; want the next event", r.lastN, b)
	}
	if d.N != r.lastN+1 || f.Seq <= r.lastSeq || f.Epoch == "" || f.Epoch != r.epoch {
		r.t.Fatalf("after n=%d seq=%d epoch %s: %s; want n=%d, a higher seq, the same epoch", r.lastN, r.lastSeq, r.epoch, b, r.lastN+1)
	}
	r.lastN, r.lastSeq = d.N, f.Seq
}

// readRaw reads one frame's bytes.
func readRaw(c *wsClient, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, b, err := c.c.Read(ctx)
	return int(typ), b, err
}

// A client of a topic receiving 500 events/s goes away for 5 s twice and
// resumes with since and epoch, once on the same gateway and once on
// another: it gets every event exactly once, in seq order, with no gap.
func TestSocketResumesFromJetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("two 5 s disconnects")
	}
	shop := keepEveryEvent(t, startEventsShop(t, eventsNATS(t), ""))
	_, ts1 := shop.gateway(t)
	_, ts2 := shop.gateway(t)

	c := shopSocket(t, ts1, bearer(adminKey)...)
	first := c.subscribe("orders/o1", "")
	if first.Recovered || first.Epoch == "" {
		t.Fatalf("a first subscribe: %+v; want an epoch, not recovered", first)
	}
	r := &eventReader{t: t, lastN: -1, lastSeq: first.Seq, epoch: first.Epoch}

	const rate, total = 500, 500 * 13 // 13 s of events: 1 s, away 5 s, 1 s, away 5 s, the rest
	published := make(chan struct{})
	go func() {
		defer close(published)
		shop.publish(t, "o1", 0, total, socket.Visibility{Public: true}, time.Second/rate)
	}()
	resume := func(ts *httptest.Server) {
		t.Helper()
		c := shopSocket(t, ts, bearer(adminKey)...)
		a := c.subscribe("orders/o1", fmt.Sprintf(`,"since":%d,"epoch":%q`, r.lastSeq, r.epoch))
		if !a.Recovered || a.Seq != r.lastSeq || a.Epoch != r.epoch {
			t.Fatalf("resume after seq %d: %+v; want recovered from it", r.lastSeq, a)
		}
		caughtUp(t, r, c, "the same gateway")
		r.readUntil(c, r.lastN+rate/2) // then live ones
		_ = c.c.CloseNow()
	}
	r.readUntil(c, rate-1)
	_ = c.c.CloseNow()
	away := time.NewTimer(5 * time.Second) // a real absence, not synchronisation
	<-away.C
	resume(ts1)
	away.Reset(5 * time.Second)
	<-away.C

	c = shopSocket(t, ts2, bearer(adminKey)...)
	a := c.subscribe("orders/o1", fmt.Sprintf(`,"since":%d,"epoch":%q`, r.lastSeq, r.epoch))
	if !a.Recovered || a.Seq != r.lastSeq || a.Epoch != r.epoch {
		t.Fatalf("resume on another gateway after seq %d: %+v; want recovered from it", r.lastSeq, a)
	}
	caughtUp(t, r, c, "another gateway")
	r.readUntil(c, total-1)
	<-published
}

// caughtUp reads the first 2000 events after a resume (all missed: 5 s
// away at 500 events/s) and logs how long they took.
func caughtUp(t *testing.T, r *eventReader, c *wsClient, where string) {
	t.Helper()
	start := time.Now()
	r.readUntil(c, r.lastN+2000)
	t.Logf("resumed on %s: 2000 missed events in %v", where, time.Since(start).Round(time.Millisecond))
}

// Past the window (a tiny one) or in another epoch, a resume is answered
// recovered: false at once, with the current seq.
func TestSocketResumePastTheWindow(t *testing.T) {
	t.Parallel()
	shop, ts, c, first := subscribedShop(t, "  windows:\n    - {prefix: orders, max_bytes: 2048}\n", "orders/o2")
	_ = c.c.CloseNow()
	// 100 events of about 100 bytes: the window keeps the last 20 or so.
	shop.publish(t, "o2", 0, 100, socket.Visibility{Public: true}, 0)
	now := waitSeq(t, ts, "orders/o2", first.Seq+100)

	fresh := shopSocket(t, ts, bearer(adminKey)...)
	a := fresh.subscribe("orders/o2", fmt.Sprintf(`,"since":%d,"epoch":%q`, first.Seq, first.Epoch))
	if a.Recovered || a.Seq != now || a.Epoch != first.Epoch {
		t.Errorf("resume from an event the window dropped: %+v; want recovered false at seq %d", a, now)
	}
	other := shopSocket(t, ts, bearer(adminKey)...)
	a = other.subscribe("orders/o2", fmt.Sprintf(`,"since":%d,"epoch":"another"`, now))
	if a.Recovered || a.Seq != now {
		t.Errorf("resume in another epoch: %+v; want recovered false at seq %d", a, now)
	}
	// The live events follow the answer's seq.
	shop.publish(t, "o2", 100, 101, socket.Visibility{Public: true}, 0)
	r := &eventReader{t: t, lastN: 99, lastSeq: a.Seq, epoch: first.Epoch}
	r.readUntil(other, 100)
}

// waitSeq waits (bounded) until a subscribe to topic answers seq at
// least want (the service stores its events in the background), and
// returns it.
func waitSeq(t *testing.T, ts *httptest.Server, topic string, want uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c := shopSocket(t, ts, bearer(adminKey)...)
		a := c.subscribe(topic, "")
		_ = c.c.CloseNow()
		if a.Seq >= want {
			return a.Seq
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s at seq %d after 10s; want %d", topic, a.Seq, want)
		}
		<-tick.C
	}
}

// An event another principal may not see is not delivered to them; the
// one who may sees it.
func TestSocketEventsFromJetStreamFilteredByVisibility(t *testing.T) {
	t.Parallel()
	shop := keepEveryEvent(t, startEventsShop(t, eventsNATS(t), ""))
	_, ts := shop.gateway(t)
	alice := shopSocket(t, ts, bearer(aliceKey)...)
	bob := shopSocket(t, ts, "X-API-Key", bobKey)
	aliceStart := alice.subscribe("orders/o3", "")
	bobStart := bob.subscribe("orders/o3", "")
	shop.publish(t, "o3", 0, 1, socket.Visibility{Subjects: []string{"alice"}}, 0)
	shop.publish(t, "o3", 1, 2, socket.Visibility{Public: true}, 0)

	ra := &eventReader{t: t, lastN: -1, lastSeq: aliceStart.Seq, epoch: aliceStart.Epoch}
	ra.readUntil(alice, 1)
	_, b, err := readRaw(bob, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var f eventFrame
	if json.Unmarshal(b, &f) != nil || string(f.Data) != `{"n":1}` || f.Seq <= bobStart.Seq {
		t.Errorf("bob's first frame: %s; want the public event n=1 only", b)
	}
}

// Without events:, a subscribe with since is answered recovered: false
// (the gateway's seqs are its own), with no epoch.
func TestSocketSinceWithoutEventsNotRecovered(t *testing.T) {
	t.Parallel()
	_, ts := startOrdersShop(t)
	c := shopSocket(t, ts, bearer(aliceKey)...)
	f := c.request(`{"type":"subscribe","id":"s","topic":"orders/o1","since":7,"epoch":"e"}`)
	var a map[string]any
	if f.Status != 200 || json.Unmarshal(f.Result, &a) != nil || a["recovered"] != false || a["epoch"] != nil || a["subscribed"] != true {
		t.Fatalf("subscribe with since: %s; want subscribed, recovered false, no epoch", f.raw)
	}
	if f := c.request(`{"type":"subscribe","id":"t","topic":"orders/o2","since":-1}`); f.Status != 400 || !strings.Contains(f.raw, "since must be a non-negative integer") {
		t.Errorf("since -1: %s; want 400", f.raw)
	}
}

// A topic's stream deleted while watched is made again by the gateway:
// the watcher gets a gap marker with the new epoch, then the events of
// the new stream.
func TestSocketWatchGoesOnInANewEpoch(t *testing.T) {
	t.Parallel()
	shop, _, c, first := subscribedShop(t, "", "orders/o6")

	nc := natstest.Connect(t, shop.url)
	js, err := jetstream.New(nc)
	must(t, err)
	ctx := testCtx(t)
	must(t, js.DeleteStream(ctx, strings.ToUpper(strings.ReplaceAll(shop.root, ".", "_"))+"_orders"))

	_, b, err := readRaw(c, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var gap eventFrame
	if json.Unmarshal(b, &gap) != nil || gap.Type != "gap" || gap.Epoch == "" || gap.Epoch == first.Epoch {
		t.Fatalf("after the stream's deletion: %s; want a gap marker with a new epoch", b)
	}
	shop.publish(t, "o6", 0, 1, socket.Visibility{Public: true}, 0)
	r := &eventReader{t: t, lastN: -1, lastSeq: gap.Seq, epoch: gap.Epoch}
	r.readUntil(c, 0)
}

// Resumed subscriptions (each with its own goroutine sending its events)
// subscribed and unsubscribed over and over leave no goroutine and no
// topic read behind.
func TestSocketResumeCyclesLeaveNothing(t *testing.T) {
	_, _, c, first := subscribedShop(t, "", "orders/o8")
	before := goroutines()
	const cycles = 300
	for i := range cycles {
		topic := fmt.Sprintf("orders/r%d", i%3)
		a := c.subscribe(topic, fmt.Sprintf(`,"since":%d,"epoch":%q`, first.Seq, first.Epoch))
		if a.Epoch != first.Epoch {
			t.Fatalf("cycle %d: %+v", i, a)
		}
		if f := c.request(fmt.Sprintf(`{"type":"unsubscribe","id":"u%d","topic":%q}`, frameIDs.Add(1), topic)); f.Status != 200 {
			t.Fatalf("unsubscribe: %s", f.raw)
		}
	}
	waitGoroutines(t, before)
}

// keepEveryEvent declares the shop's orders conflate: false: these tests
// follow every event of a topic, not only its latest state (by default a
// newer state replaces one still queued for the client).
func keepEveryEvent(t *testing.T, shop *eventsShop) *eventsShop {
	t.Helper()
	yaml := strings.Replace(shop.yaml, "crud: [get]}", "crud: [get], conflate: false}", 1)
	if yaml == shop.yaml {
		t.Fatal("the shop's YAML has no orders resource to declare conflate: false")
	}
	shop.yaml = yaml
	return shop
}
