// Package ontime gives timeouts that count the time a process was able to
// watch passing, so a process starved of CPU (a loaded machine, a pause)
// does not mistake its own slowness for a peer's silence.
//
// A timer ticks every step; each tick credits the time since the last one,
// but at most two steps, however late the tick came: while the process
// runs normally the credit is the wall time, while it is starved the lost
// time is not counted. The wall time is still bounded by a hard limit.
//
//	ctx, cancel := ontime.WithTimeout(ctx, 2*time.Second, 30*time.Second)
//	defer cancel()
//	err := peer.Ping(ctx) // fails after 2s of watched silence, 30s at most
package ontime

import (
	"context"
	"errors"
	"time"
)

// steps is how many ticks a timeout is cut into: the most time a late
// tick can credit beyond the wall time is timeout/steps.
const steps = 20

// ErrTimeout is the cause of a context ended by WithTimeout's timer.
var ErrTimeout = errors.New("ontime: timeout")

// WithTimeout returns a copy of parent that is cancelled (cause ErrTimeout)
// once d has passed in watched time, or limit in wall time, whichever is
// first. Call cancel to release the timer.
func WithTimeout(parent context.Context, d, limit time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	step := max(d/steps, time.Millisecond)
	t := &watch{budget: d, step: step, now: time.Now}
	ticker := time.NewTicker(step)
	hard := time.NewTimer(limit)
	go func() {
		defer ticker.Stop()
		defer hard.Stop()
		last := t.now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hard.C:
				cancel(ErrTimeout)
				return
			case <-ticker.C:
				now := t.now()
				if t.credit(now.Sub(last)) {
					cancel(ErrTimeout)
					return
				}
				last = now
			}
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// watch counts watched time against a budget.
type watch struct {
	budget  time.Duration
	step    time.Duration
	now     func() time.Time
	watched time.Duration // credited so far
}

// credit adds the time since the last tick, at most two steps of it, and
// reports whether the budget is spent.
func (w *watch) credit(since time.Duration) bool {
	w.watched += min(max(since, 0), 2*w.step)
	return w.watched >= w.budget
}
