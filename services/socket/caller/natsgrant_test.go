package caller_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/natsserve"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// TestNATSSubscriberFollowsRootAndRevocation checks two things a NATS
// subscriber learns from the service's answer about its key: the root of
// the service's event subjects (one of its own here), and, once the
// answer is old, that the key was revoked.
func TestNATSSubscriberFollowsRootAndRevocation(t *testing.T) {
	t.Parallel()
	url := natstest.EmbeddedJetStream(t)
	name, prefix := natstest.UniqueName("grantsvc"), natstest.UniqueName("gr")
	const root = "acme.events"
	js, err := jetstream.New(natstest.Connect(t, url))
	must(t, err)
	_, err = eventlog.Open(sockettest.Context(t), js, []eventlog.Window{{Prefix: prefix, MaxAge: time.Minute}}, eventlog.WithRoot(root))
	must(t, err)

	keys := sockettest.Keys(t)
	srv, err := socket.NewServer(socket.Config{Name: name, Version: "1.0.0"}, socket.WithKeys(keys), socket.WithDrainTimeout(5*time.Second))
	must(t, err)
	sockettest.RegisterEcho(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, natsserve.Listen(natstest.Connect(t, url), nil, natsserve.WithEvents(root)))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	c, err := caller.Dial(name, caller.WithNATS(natstest.Connect(t, url)), caller.WithKey(sockettest.TestKey))
	must(t, err)
	t.Cleanup(func() { _ = c.Close() })
	g := caller.Grant(sockettest.Context(t), c)
	for deadline := time.Now().Add(20 * time.Second); g == nil && time.Now().Before(deadline); g = caller.Grant(sockettest.Context(t), c) {
		<-time.After(10 * time.Millisecond) // no instance answers yet: Serve is starting; poll
	}
	if g == nil || g.Code != "" || g.Root != root || g.Subject != "test" {
		t.Fatalf("grant %+v; want the test key's, root %s", g, root)
	}

	topic := prefix + "/o1"
	next := sockettest.Events(t, c, topic)
	must(t, srv.Publish(topic, "to the test key", socket.Visibility{Subjects: []string{"test"}}))
	if e := next(); e.Topic != topic || string(e.Data) != `"to the test key"` {
		t.Fatalf("event %+v; want it on %s under root %s", e, topic, root)
	}

	if !keys.Revoke("test") {
		t.Fatal("the test key is not in the keyring")
	}
	if g := caller.Grant(sockettest.Context(t), c); g.Code != "" {
		t.Fatalf("grant %+v asked again before it is old", g)
	}
	caller.SetGrantTTL(c, time.Nanosecond)
	if g := caller.Grant(sockettest.Context(t), c); status.Code(g.Code) != status.CodeUnauthenticated {
		t.Fatalf("grant %+v after the key was revoked; want UNAUTHENTICATED", g)
	}
	_, err = c.Subscribe(sockettest.Context(t), topic, func(caller.Event) {})
	sockettest.WantCode(t, err, status.CodeUnauthenticated)
}
