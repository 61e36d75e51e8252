package run_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

// runOnNATS runs the conformance fixture over NATS at url until the test
// ends, and waits for its endpoints.
func runOnNATS(t *testing.T, url string, noEvents bool) *nats.Conn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run.Run(ctx, run.Options{Service: "conformance", NATS: url, NoNATSEvents: noEvents, Keys: []keyring.Key{{Name: "k", Secret: "s", Delegate: true}}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	nc := natstest.Connect(t, url)
	natstest.WaitService(t, nc, "conformance", 1, 1)
	return nc
}

// With NATS, a service stores its events in JetStream, where a gateway's
// log reads them.
func TestRunStoresEventsInJetStream(t *testing.T) {
	url := natstest.EmbeddedJetStream(t)
	nc := natstest.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := eventlog.Open(ctx, js, []eventlog.Window{{Prefix: "things", MaxAge: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan eventlog.Event, 16)
	_, stop, err := l.Watch(ctx, "things/t1", eventlog.Position{}, func(e eventlog.Event) { got <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, err := caller.Dial("conformance", caller.WithNATS(runOnNATS(t, url, false)), caller.WithKey("s"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The instance stores its events from before it takes requests.
	if _, err := c.Request(ctx, "PUBLISH", "", map[string]any{"topic": "things/t1", "count": 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Header.Get(eventlog.HeaderService) != "conformance" || e.Header.Get(eventlog.HeaderTopic) != "things/t1" || string(e.Data) != `{"i":1,"data":null}` {
			t.Errorf("stored event: %s, headers %v", e.Data, e.Header)
		}
	case <-ctx.Done():
		t.Fatal("the event was not stored within 30s")
	}
}

// NoNATSEvents (-nats-events=false) leaves JetStream alone: no instance
// stores events, nor answers callers' grants (an instance that stores
// them answers from before its endpoints are listed).
func TestRunWithoutNATSEvents(t *testing.T) {
	url := natstest.EmbeddedJetStream(t)
	nc := runOnNATS(t, url, true)
	_, err := nc.Request("streamgate.conformance.$EVENTS", nil, 5*time.Second)
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("grant request to a service without NATS events: %v; want no responders", err)
	}
}
