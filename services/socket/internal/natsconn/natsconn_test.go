package natsconn_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/socket/internal/natsconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait fails the test unless ch is closed within 20 seconds.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting until %s", what)
	}
}

// A stretch ends, with ErrDropped, when the server goes away; back is
// closed when the connection is up again, and the next stretch is up.
func TestStretchEndsWithTheConnection(t *testing.T) {
	ns := natstest.Restartable(t)
	nc := natstest.Reconnecting(t, ns.URL)
	var wg sync.WaitGroup
	done := make(chan struct{})
	defer wg.Wait()
	defer close(done)
	w := natsconn.Watch(nc, &wg, done)

	up, back := w.Up()
	if up.Err() != nil {
		t.Fatalf("connected, but the stretch has ended: %v", context.Cause(up))
	}
	ns.Stop()
	wait(t, up.Done(), "the stretch ends with the server")
	if !errors.Is(context.Cause(up), natsconn.ErrDropped) {
		t.Errorf("cause %v, want ErrDropped", context.Cause(up))
	}
	if down, _ := w.Up(); down.Err() == nil {
		t.Error("while the server is down, Up returns a stretch that is up")
	}
	ns.Start(t)
	wait(t, back, "the connection is back")
	if next, _ := w.Up(); next.Err() != nil {
		t.Errorf("after the reconnect, the stretch has ended: %v", context.Cause(next))
	}
}

// A connection down when watched starts with a stretch already over.
func TestWatchedWhileDown(t *testing.T) {
	ns := natstest.Restartable(t)
	nc := natstest.Reconnecting(t, ns.URL)
	ns.Stop()
	for deadline := time.Now().Add(20 * time.Second); nc.Status() == nats.CONNECTED; {
		if time.Now().After(deadline) {
			t.Fatal("the client never noticed the server went away")
		}
		<-time.After(10 * time.Millisecond)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	defer wg.Wait()
	defer close(done)
	up, back := natsconn.Watch(nc, &wg, done).Up()
	if up.Err() == nil {
		t.Fatal("watched while down, the stretch is up")
	}
	ns.Start(t)
	wait(t, back, "the connection is back")
}
