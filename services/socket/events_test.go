package socket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamgate/streamgate/internal/promtest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// registerPublisher registers SET (a write that publishes its body on the
// topic named by its id, e.g. "items/1", visible as the body's "vis" says)
// besides ECHO.
func registerPublisher(t testing.TB, srv *socket.Server) {
	t.Helper()
	sockettest.RegisterEcho(t, srv)
	must(t, srv.Handle("SET", socket.HandlerFunc(func(_ context.Context, req *socket.Request) (json.RawMessage, error) {
		var in struct {
			Vis socket.Visibility `json:"vis"`
		}
		_ = json.Unmarshal(req.Body, &in)
		if err := srv.Publish(req.ResourceID, req.Body, in.Vis); err != nil {
			return nil, err
		}
		return req.Body, nil
	})))
}

// collect subscribes to topic and returns the channel the events arrive on.
func collect(t *testing.T, c *caller.Client, topic string) (<-chan caller.Event, func()) {
	t.Helper()
	ch := make(chan caller.Event, 4096)
	stop, err := c.Subscribe(sockettest.Context(t), topic, func(e caller.Event) { ch <- e })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ch, stop
}

// next waits for the next event.
func next(t *testing.T, ch <-chan caller.Event) caller.Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(testDeadline):
		t.Fatal("no event")
		return caller.Event{}
	}
}

// none checks that no event is waiting.
func none(t *testing.T, ch <-chan caller.Event, what string) {
	t.Helper()
	select {
	case e := <-ch:
		t.Fatalf("%s got %+v", what, e)
	default:
	}
}

func TestEventsReachSubscribersInSeqOrder(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Register: func(srv *socket.Server) { registerPublisher(t, srv) }})
	c := sockettest.DialServer(t, ts, caller.WithKey(sockettest.GatewayKey))
	ctx := sockettest.Context(t)
	one, _ := collect(t, c, "items/1")
	items, _ := collect(t, c, "items/*")
	all, _ := collect(t, c, "*")
	set := func(topic string, n int) {
		t.Helper()
		if _, err := c.Request(ctx, "SET", topic, map[string]any{"n": n, "vis": map[string]any{"public": true}}); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= 3; n++ {
		set("items/1", n)
	}
	set("items/2", 4)
	set("orders/1", 5)
	for n := 1; n <= 3; n++ {
		e := next(t, one)
		want := fmt.Sprintf(`{"n":%d,"vis":{"public":true}}`, n)
		if e.Topic != "items/1" || e.Seq != uint64(n) || string(e.Data) != want || e.Gap || !e.Visibility.Public {
			t.Fatalf("event %d = %+v (data %s), want items/1 seq %d data %s", n, e, e.Data, n, want)
		}
	}
	for _, w := range []struct {
		ch     <-chan caller.Event
		topics []string
	}{{items, []string{"items/1", "items/1", "items/1", "items/2"}}, {all, []string{"items/1", "items/1", "items/1", "items/2", "orders/1"}}} {
		var got []string
		for range w.topics {
			e := next(t, w.ch)
			got = append(got, fmt.Sprintf("%s#%d", e.Topic, e.Seq))
		}
		if want := "items/1#1 items/1#2 items/1#3 items/2#1 orders/1#1"; !strings.HasPrefix(want, strings.Join(got, " ")) {
			t.Fatalf("got %v, want a prefix of %s", got, want)
		}
	}
	// orders/1 came after items/2: nothing more is waiting for the narrower subscriptions.
	none(t, one, "items/1")
	none(t, items, "items/*")
}

func TestEventsOnlyVisibleToAKeyThatDoesNotDelegate(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Register: func(srv *socket.Server) { registerPublisher(t, srv) }})
	gw := sockettest.DialServer(t, ts, caller.WithKey(sockettest.GatewayKey))
	plain := sockettest.DialServer(t, ts) // key "test", role "service", no delegation
	ctx := sockettest.Context(t)
	gwEvents, _ := collect(t, gw, "*")
	plainEvents, _ := collect(t, plain, "*")
	vis := []map[string]any{
		{"public": true},
		{"subjects": []string{"test"}},
		{"roles": []string{"service"}},
		{"subjects": []string{"alice"}},
		{"roles": []string{"admin"}},
	}
	// A request on each client after Subscribe comes after the subscription.
	if _, err := plain.Request(ctx, "ECHO", "", nil); err != nil {
		t.Fatal(err)
	}
	for i, v := range vis {
		if _, err := gw.Request(ctx, "SET", fmt.Sprintf("t/%d", i), map[string]any{"vis": v}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range vis {
		if e := next(t, gwEvents); e.Topic != fmt.Sprintf("t/%d", i) {
			t.Fatalf("delegating key: event %d is %s", i, e.Topic)
		}
	}
	for i := range 3 {
		if e := next(t, plainEvents); e.Topic != fmt.Sprintf("t/%d", i) {
			t.Fatalf("plain key: event %d is %s", i, e.Topic)
		}
	}
	// The gateway got t/4 after t/3: the plain key's events were sent
	// before, in order, so none may be waiting now.
	none(t, plainEvents, "a key that may not see t/3 and t/4")

	cases := []struct {
		name string
		vis  socket.Visibility
		p    socket.Principal
		want bool
	}{
		{"public", socket.Visibility{Public: true}, socket.Principal{Subject: "x"}, true},
		{"owner", socket.Visibility{Subjects: []string{"alice"}, Roles: []string{"admin"}}, socket.Principal{Subject: "alice"}, true},
		{"admin", socket.Visibility{Subjects: []string{"alice"}, Roles: []string{"admin"}}, socket.Principal{Subject: "bob", Roles: []string{"admin"}}, true},
		{"other user", socket.Visibility{Subjects: []string{"alice"}, Roles: []string{"admin"}}, socket.Principal{Subject: "bob", Roles: []string{"user"}}, false},
		{"nobody", socket.Visibility{}, socket.Principal{Subject: "alice"}, false},
	}
	for _, tc := range cases {
		if got := tc.vis.Allows(tc.p); got != tc.want {
			t.Errorf("%s: Allows = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestEventsTopicsAreChecked(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Register: func(srv *socket.Server) { registerPublisher(t, srv) }})
	c := sockettest.DialServer(t, ts, caller.WithKey(sockettest.GatewayKey))
	for _, topic := range []string{"", "orders//1", "orders/*/x", "ord*", "a b", "/x", strings.Repeat("x", 257)} {
		_, err := c.Subscribe(sockettest.Context(t), topic, func(caller.Event) {})
		sockettest.WantCode(t, err, socket.CodeInvalidArgument)
	}
	for _, topic := range []string{"*", "orders/*", "orders//1"} {
		sockettest.WantCode(t, ts.Publish(topic, nil, socket.Visibility{}), socket.CodeInvalidArgument)
	}
	sockettest.WantCode(t, ts.Publish("orders/1", []byte(`{"x":`), socket.Visibility{}), socket.CodeInvalidArgument)
	if err := ts.Publish("orders/1", nil, socket.Visibility{}); err != nil {
		t.Fatalf("no data (null): %v", err)
	}
}

func TestEventsUnsubscribe(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	ts := sockettest.StartServer(t, sockettest.Spec{Name: "unsub", Bufconn: true, Opts: []socket.ServerOption{socket.WithMetrics(reg)}, Register: func(srv *socket.Server) { registerPublisher(t, srv) }})
	c := sockettest.DialServer(t, ts, caller.WithKey(sockettest.GatewayKey))
	ctx := sockettest.Context(t)
	a, stopA := collect(t, c, "a/1")
	a2, stopA2 := collect(t, c, "a/1")
	b, _ := collect(t, c, "b/1")
	set := func(topic string) {
		t.Helper()
		if _, err := c.Request(ctx, "SET", topic, nil); err != nil {
			t.Fatal(err)
		}
	}
	set("a/1")
	next(t, a)
	next(t, a2)
	stopA()
	set("a/1")
	if e := next(t, a2); e.Seq != 2 {
		t.Fatalf("second subscription of a/1 got %+v", e)
	}
	none(t, a, "a stopped subscription")
	stopA2()
	set("a/1") // no stream subscribes to a/1 any more: not sent
	set("b/1")
	next(t, b)
	none(t, a2, "a stopped subscription")
	delivered := promtest.Gather(t, reg).Value("streamgate_service_events_delivered_total", "service", "unsub")
	if delivered != 3 { // a/1 twice (one frame each for both subscriptions), b/1 once
		t.Fatalf("events delivered = %v, want 2 frames of a/1 before the unsubscribe and 1 of b/1", delivered)
	}
}

func TestEventsSlowSubscriberIsDroppedNotWaitedFor(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	ts := sockettest.StartServer(t, sockettest.Spec{Name: "slow", Opts: []socket.ServerOption{socket.WithMetrics(reg)}, Register: func(srv *socket.Server) { registerPublisher(t, srv) }})
	ctx := sockettest.Context(t)

	// A subscriber that stops reading: a raw stream with small fixed flow
	// control windows, so the service's sends back up quickly.
	slowCtx, cancelSlow := context.WithCancel(ctx)
	defer cancelSlow()
	slow := rawSubscriber(t, slowCtx, ts, "t/*")

	fast := sockettest.DialServer(t, ts, caller.WithKey(sockettest.GatewayKey))
	events, _ := collect(t, fast, "t/*")
	if _, err := fast.Request(ctx, "ECHO", "", nil); err != nil {
		t.Fatal(err)
	}
	data := json.RawMessage(`"` + strings.Repeat("x", 1024) + `"`)
	const batches, batch = 30, 100
	for i := range batches {
		for range batch {
			must(t, ts.Publish("t/1", data, socket.Visibility{}))
		}
		// The fast subscriber keeps up: it has every event of the batch,
		// in order, before the next batch.
		for j := range batch {
			e := next(t, events)
			if want := uint64(i*batch + j + 1); e.Seq != want || e.Gap {
				t.Fatalf("fast subscriber: event %+v, want seq %d without a gap", e.Seq, want)
			}
		}
	}
	value := func(name string) float64 {
		return promtest.Gather(t, reg).Value(name, "service", "slow")
	}
	if dropped := value("streamgate_service_events_dropped_total"); dropped == 0 {
		t.Fatal("nothing dropped for a subscriber that does not read")
	}
	if published := value("streamgate_service_events_published_total"); published != batches*batch {
		t.Fatalf("published = %v", published)
	}

	// The slow subscriber reads again: the seq jumps where events were
	// dropped. Events published from now on reach it once its backlog is
	// read.
	jumped := make(chan uint64, 1)
	go func() {
		var prev uint64
		for {
			r, err := slow.Recv()
			if err != nil {
				return
			}
			if e := r.GetEvent(); e != nil {
				if e.GetSeq() != prev+1 {
					jumped <- prev
					return
				}
				prev = e.GetSeq()
			}
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case prev := <-jumped:
			if prev == 0 || prev >= batches*batch {
				t.Fatalf("the slow subscriber's seq jumped after %d", prev)
			}
			cancelSlow()
			return
		case <-tick.C:
			must(t, ts.Publish("t/1", data, socket.Visibility{}))
		case <-ctx.Done():
			t.Fatal("the slow subscriber never saw a seq jump")
		}
	}
}

func TestEventsResubscribeAfterReconnect(t *testing.T) {
	t.Parallel()
	first := sockettest.StartServer(t, sockettest.Spec{Register: func(srv *socket.Server) { registerPublisher(t, srv) }})
	c := sockettest.DialServer(t, first, caller.WithKey(sockettest.GatewayKey), caller.WithReadyWait(testDeadline))
	ctx := sockettest.Context(t)
	events, _ := collect(t, c, "x/*")
	if _, err := c.Request(ctx, "SET", "x/1", nil); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); e.Topic != "x/1" || e.Seq != 1 {
		t.Fatalf("before the break: %+v", e)
	}
	// The instance dies without a drain: the subscription hears of the gap.
	first.Stop()
	if e := next(t, events); !e.Gap || e.Topic != "x/*" || e.Data != nil {
		t.Fatalf("after the break: %+v, want a gap of x/*", e)
	}
	// A new instance on the same address: the client subscribes its new
	// stream before any request goes out on it.
	second := sockettest.StartServer(t, sockettest.Spec{Addr: first.Addr, Register: func(srv *socket.Server) { registerPublisher(t, srv) }})
	if _, err := c.Request(ctx, "SET", "x/2", nil); err != nil {
		t.Fatal(err)
	}
	// Once the new stream is subscribed, the gap is told again: what the
	// instance published meanwhile is lost.
	if e := next(t, events); !e.Gap || e.Topic != "x/*" || e.Data != nil {
		t.Fatalf("after the reconnect: %+v, want a gap of x/*", e)
	}
	if e := next(t, events); e.Topic != "x/2" || e.Seq != 1 || e.Gap {
		t.Fatalf("after the reconnect: %+v", e)
	}
	must(t, second.Publish("x/2", nil, socket.Visibility{}))
	if e := next(t, events); e.Seq != 2 {
		t.Fatalf("second event after the reconnect: %+v", e)
	}
}

func TestSubscribeReturnsOnceTheSubscriptionIsInPlace(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true, Register: func(srv *socket.Server) { registerPublisher(t, srv) }})
	c := sockettest.DialServer(t, ts, caller.WithKey(sockettest.GatewayKey))
	if _, err := c.Request(sockettest.Context(t), "ECHO", "", nil); err != nil { // a ready stream
		t.Fatal(err)
	}
	for i := range 20 {
		topic := fmt.Sprintf("in-place/%d", i)
		ch, _ := collect(t, c, topic)
		// Published at once, with no request in between: it must arrive.
		must(t, ts.Publish(topic, nil, socket.Visibility{}))
		if e := next(t, ch); e.Topic != topic || e.Seq != 1 {
			t.Fatalf("got %+v, want %s seq 1", e, topic)
		}
	}
}

// A subscription made right after Dial, before the client's first stream
// is ready, is in place when Subscribe returns: an event the service
// publishes then reaches it. (Subscribe returned at once while no stream
// was ready, and an event published before the stream opened was lost
// without a gap: the hub's TestWatchersLeaveInAnyOrder lost its one
// event under load.)
func TestSubscribeRightAfterDialGetsTheNextEvent(t *testing.T) {
	t.Parallel()
	for i := range 20 {
		srv, err := socket.NewServer(socket.Config{Name: "orders"}, socket.WithoutAuth())
		if err != nil {
			t.Fatal(err)
		}
		c := sockettest.Start(t, srv)
		ch, stop := collect(t, c, "orders/o1")
		if err := srv.Publish("orders/o1", map[string]int{"n": i}, socket.Visibility{Public: true}); err != nil {
			t.Fatal(err)
		}
		if e := next(t, ch); e.Gap || string(e.Data) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("round %d: got %+v", i, e)
		}
		stop()
	}
}
