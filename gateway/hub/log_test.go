package hub_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/gateway/hub"
	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/socket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A watcher gets the events of the topic's publisher that its principal
// may see, with the stream's seq and epoch; a resume from a seq gets the
// ones after it, recovered.
func TestLogWatch(t *testing.T) {
	nc := natstest.Connect(t, natstest.EmbeddedJetStream(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	events, err := eventlog.Open(ctx, js, []eventlog.Window{{Prefix: "orders", MaxAge: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(service string, vis socket.Visibility, n int) uint64 {
		t.Helper()
		v, _ := json.Marshal(vis)
		seq, err := events.PublishMsg(ctx, eventlog.Message{
			Topic: "orders/o1", Data: fmt.Appendf(nil, `{"n":%d}`, n),
			Header: nats.Header{eventlog.HeaderService: {service}, eventlog.HeaderVisibility: {string(v)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	l := hub.NewLog(events)
	alice := socket.Principal{Subject: "alice"}
	got := make(chan hub.Event, 16)
	stop, start, err := l.Watch(ctx, "orders", "orders/o1", eventlog.Position{}, alice, func(ev hub.Event) { got <- ev })
	if err != nil {
		t.Fatal(err)
	}
	if start.Recovered || start.Epoch == "" {
		t.Fatalf("a first watch: %+v", start)
	}
	publish("orders", socket.Visibility{Subjects: []string{"bob"}}, 1) // not alice's
	publish("intruder", socket.Visibility{Public: true}, 2)            // not the topic's service
	seq := publish("orders", socket.Visibility{Subjects: []string{"alice"}}, 3)
	select {
	case ev := <-got:
		if string(ev.Data) != `{"n":3}` || ev.Seq != seq || ev.Epoch != start.Epoch || ev.Gap {
			t.Fatalf("alice's first event: %+v; want n=3 at seq %d", ev, seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	stop()
	if n := l.Watched(); n != 0 {
		t.Errorf("%d topics read after the last watcher left", n)
	}

	after := publish("orders", socket.Visibility{Public: true}, 4)
	again := make(chan hub.Event, 16)
	stop, start, err = l.Watch(ctx, "orders", "orders/o1", eventlog.Position{Epoch: start.Epoch, Seq: seq}, alice, func(ev hub.Event) { again <- ev })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !start.Recovered || start.Seq != seq {
		t.Fatalf("a resume after seq %d: %+v; want recovered", seq, start)
	}
	select {
	case ev := <-again:
		if string(ev.Data) != `{"n":4}` || ev.Seq != after {
			t.Fatalf("the missed event: %+v; want n=4 at seq %d", ev, after)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the missed event did not come")
	}
}
