// Package natsconn follows a NATS connection's status for callers that
// must learn when the answers they wait for are lost: each stretch of the
// connection being up is a context that ends when it drops.
//
//	w := natsconn.Watch(nc, &wg, done)
//	up, back := w.Up()
//	if up.Err() != nil {
//		<-back // down: wait until it is up again
//	}
//	ctx, cancel := context.WithCancel(ctx)
//	defer context.AfterFunc(up, cancel)() // the request ends with the stretch
package natsconn

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// ErrDropped is the cause of a stretch that ended: the connection to NATS
// dropped.
var ErrDropped = errors.New("the connection to NATS dropped")

// Watcher follows one connection's status.
type Watcher struct {
	nc  *nats.Conn
	cur atomic.Pointer[stretch] // written by follow alone, after Watch
}

// stretch is one stretch of the connection being up: ctx ends when the
// connection drops, and back is closed when it is up again (a new stretch
// then stands for the new one).
type stretch struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	back   chan struct{}
}

// newStretch returns a stretch that is up, or already over when up is
// false.
func newStretch(up bool) *stretch {
	ctx, cancel := context.WithCancelCause(context.Background())
	if !up {
		cancel(ErrDropped)
	}
	return &stretch{ctx: ctx, cancel: cancel, back: make(chan struct{})}
}

// Watch starts following nc's status until done is closed, on one
// goroutine counted in wg; its status listener is removed when it returns.
func Watch(nc *nats.Conn, wg *sync.WaitGroup, done <-chan struct{}) *Watcher {
	w := &Watcher{nc: nc}
	changes := nc.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	// Registered before the status is read: no change falls between.
	w.cur.Store(newStretch(nc.Status() == nats.CONNECTED))
	wg.Go(func() {
		defer nc.RemoveStatusListener(changes)
		w.follow(changes, done)
	})
	return w
}

// Up returns the current stretch: up ends, with cause ErrDropped, when
// the connection drops (it has ended already while the connection is
// down), and back is closed once the connection is up again.
func (w *Watcher) Up() (up context.Context, back <-chan struct{}) {
	s := w.cur.Load()
	return s.ctx, s.back
}

// follow applies the status changes until done is closed.
func (w *Watcher) follow(changes <-chan nats.Status, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case s := <-changes:
			// The channel drops changes while full: the status now
			// decides, after any drop has ended the stretch.
			if s != nats.CONNECTED {
				w.set(false)
			}
			w.set(w.nc.Status() == nats.CONNECTED)
		}
	}
}

// set records whether the connection is up now.
func (w *Watcher) set(up bool) {
	cur := w.cur.Load()
	switch {
	case up && cur.ctx.Err() != nil:
		w.cur.Store(newStretch(true))
		close(cur.back)
	case !up:
		cur.cancel(ErrDropped)
	}
}
