// Package deadline is a context whose deadline is a value: it makes no
// timer and joins no parent until something asks for its Done channel.
// A request's context is most often only read (its deadline, its meta,
// Err after the work) and never waited on; the one that waits for the
// request, the request library's stream, waits with Wait and its own
// expiry of requests instead.
//
//	ctx, cancel := deadline.New(parent, time.Now().Add(timeout))
//	defer cancel()
//	cancelled, parentDone := ctx.Wait() // no timer: the waiter watches the deadline
package deadline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamgate/streamgate/services/socket/internal/wire"
)

// Context is a context.Context ending at its deadline, when its parent
// ends, or when it is cancelled, like context.WithDeadline's. Until its
// Done is asked for, Err reads the clock, the parent and whether it was
// cancelled. Done makes what context.WithDeadline (or WithCancel, with
// no deadline) would have made, which answers from then on.
type Context struct {
	parent context.Context
	at     time.Time // the deadline, the parent's when earlier; zero: none

	real atomic.Pointer[timed] // made by Done, when it has not ended before

	mu        sync.Mutex    // guards err, cancelled, and making real
	err       error         // why it ended before Done was asked for
	cancelled chan struct{} // made by Wait, closed by cancel
}

// timed is the context Done makes, with its cancel function.
type timed struct {
	ctx    context.Context
	cancel context.CancelFunc
}

var _ context.Context = (*Context)(nil)

// New returns a context ending at the deadline at (none when zero: it then
// ends only when cancelled or when parent ends), and its cancel function.
func New(parent context.Context, at time.Time) (*Context, context.CancelFunc) {
	c := &Context{}
	c.Init(parent, at)
	return c, c.Cancel
}

// Init makes a zero Context what New returns, for one held inside a larger
// struct (a request's) to save its allocation; Cancel is its cancel
// function. It must be called once, before the context is used.
func (c *Context) Init(parent context.Context, at time.Time) {
	if d, ok := parent.Deadline(); ok && (at.IsZero() || d.Before(at)) {
		at = d
	}
	c.parent, c.at = parent, at
}

// Deadline returns the deadline, the parent's when it is earlier.
func (c *Context) Deadline() (time.Time, bool) { return c.at, !c.at.IsZero() }

// Done returns a channel closed when the context ends. The first call
// makes the timer context that closes it.
func (c *Context) Done() <-chan struct{} {
	if r := c.real.Load(); r != nil {
		return r.ctx.Done()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.real.Load(); r != nil {
		return r.ctx.Done()
	}
	if c.endedLocked() {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	r := &timed{}
	if c.at.IsZero() {
		r.ctx, r.cancel = context.WithCancel(c.parent)
	} else {
		r.ctx, r.cancel = context.WithDeadline(c.parent, c.at)
	}
	c.real.Store(r)
	return r.ctx.Done()
}

// Err returns nil while the context has not ended, then why it ended:
// context.Canceled or context.DeadlineExceeded (or the parent's error);
// once it is not nil it stays the same.
func (c *Context) Err() error {
	if r := c.real.Load(); r != nil {
		return r.ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.real.Load(); r != nil {
		return r.ctx.Err()
	}
	c.endedLocked()
	return c.err
}

// endedLocked records why the context ended, if it has, and reports
// whether it has. Called with mu held, before Done was asked for.
func (c *Context) endedLocked() bool {
	if c.err != nil {
		return true
	}
	if err := c.parent.Err(); err != nil {
		c.err = err
	} else if !c.at.IsZero() && !time.Now().Before(c.at) {
		c.err = context.DeadlineExceeded
	}
	return c.err != nil
}

// Value returns the parent's values (and, once Done made it, the timer
// context's, so that a context derived from this one joins it as it would
// join one of context.WithDeadline).
func (c *Context) Value(key any) any {
	if r := c.real.Load(); r != nil {
		return r.ctx.Value(key)
	}
	return c.parent.Value(key)
}

// Wait is for one that waits for work done under the context and watches
// its deadline itself (Deadline), without the timer Done would make:
// cancelled is closed when the context is cancelled (or has ended, for
// any reason, before Wait), parentDone is the parent's Done (nil when
// the parent never ends). Once Done was asked for, cancelled is Done.
// Either closing, Err says why.
func (c *Context) Wait() (cancelled, parentDone <-chan struct{}) {
	if r := c.real.Load(); r != nil {
		return r.ctx.Done(), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.real.Load(); r != nil {
		return r.ctx.Done(), nil
	}
	if c.cancelled == nil {
		c.cancelled = make(chan struct{})
		if c.endedLocked() {
			close(c.cancelled)
		}
	}
	return c.cancelled, c.parent.Done()
}

// Asked reports whether Done was asked for and made a timer context:
// tests use it to show that a wait needed none.
func (c *Context) Asked() bool { return c.real.Load() != nil }

// WaitOn returns what one waiting for work done under ctx waits on
// besides the work's own answer and a watch of ctx's deadline: for a
// Context, under any meta wire.WithMeta added (which ends with it), its
// Wait, so that no timer is made; for any other context, its Done.
func WaitOn(ctx context.Context) (ended, parentEnded <-chan struct{}) {
	for under, ok := ctx, true; ok; under, ok = wire.UnderMeta(under) {
		if d, isDeadline := under.(*Context); isDeadline {
			return d.Wait()
		}
	}
	return ctx.Done(), nil
}

// String names the context for debugging, as the standard ones do.
func (c *Context) String() string {
	return "deadline.Context(" + c.at.String() + ")"
}

// Cancel ends the context with context.Canceled, unless it has ended
// already, and frees its timer context if Done made one.
func (c *Context) Cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.real.Load(); r != nil {
		r.cancel()
	} else if c.err == nil {
		c.err = context.Canceled
	}
	if c.cancelled != nil {
		select {
		case <-c.cancelled:
		default:
			close(c.cancelled)
		}
	}
}
