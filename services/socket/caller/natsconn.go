package caller

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go"
)

// errConnectionDropped is the cause of an attempt whose NATS connection
// dropped while it waited for its answer.
var errConnectionDropped = errors.New("the connection to NATS dropped")

// natsUp is one stretch of the NATS connection being up: ctx ends when the
// connection drops, and back is closed when it is up again (a new natsUp
// then stands for the new stretch).
type natsUp struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	back   chan struct{}
}

// newNATSUp returns a stretch that is up, or already over when up is
// false.
func newNATSUp(up bool) *natsUp {
	ctx, cancel := context.WithCancelCause(context.Background())
	if !up {
		cancel(errConnectionDropped)
	}
	return &natsUp{ctx: ctx, cancel: cancel, back: make(chan struct{})}
}

// watchConn starts following the connection's status until done is
// closed: a drop ends the current stretch (its attempts learn that their
// answers are lost), a reconnect starts the next one. One goroutine per
// client, counted in wg, runs it; the listener is removed when it returns.
func (l *natsLink) watchConn(wg *sync.WaitGroup, done <-chan struct{}) {
	changes := l.nc.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	// Registered before the status is read: no change falls between.
	l.up.Store(newNATSUp(l.nc.Status() == nats.CONNECTED))
	wg.Go(func() {
		defer l.nc.RemoveStatusListener(changes)
		l.follow(changes, done)
	})
}

// follow applies the status changes until done is closed.
func (l *natsLink) follow(changes <-chan nats.Status, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case s := <-changes:
			// The channel drops changes while full: the status now
			// decides, after any drop has ended the stretch.
			if s != nats.CONNECTED {
				l.setUp(false)
			}
			l.setUp(l.nc.Status() == nats.CONNECTED)
		}
	}
}

// setUp records whether the connection is up now; only follow calls it.
func (l *natsLink) setUp(up bool) {
	cur := l.up.Load()
	switch {
	case up && cur.ctx.Err() != nil:
		l.up.Store(newNATSUp(true))
		close(cur.back)
	case !up:
		cur.cancel(errConnectionDropped)
	}
}

// stretch returns the current stretch of the connection.
func (l *natsLink) stretch() *natsUp { return l.up.Load() }
