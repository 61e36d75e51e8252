package socket

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
)

// Coalescer runs identical work once for every caller waiting for it at
// the same moment. Unlike golang.org/x/sync/singleflight, the shared work
// runs under a context of its own that ends only when every waiting caller
// has given up (a leader that gives up does not fail the others), and a
// panic in it becomes an INTERNAL error for every waiter instead of
// crashing the process; the key is free again as soon as the work ends.
// The zero value is ready to use.
type Coalescer struct {
	// Inline runs the work on the first caller's goroutine instead of a
	// goroutine of its own: cheaper, but that caller returns only when the
	// work ends, even if its context ends first (the work is still
	// cancelled when every caller has gone). Right for callers whose own
	// caller has already moved on, such as a service answering a frame.
	Inline bool

	mu      sync.Mutex // guards flights, joined
	flights map[string]*flight
	joined  chan struct{} // closed when the next caller comes; nil unless Waiting made it
}

// flight is one piece of shared work.
type flight struct {
	done    chan struct{} // closed when res and err are set
	res     json.RawMessage
	err     error
	waiters int                // callers still waiting; guarded by Coalescer.mu
	cancel  context.CancelFunc // ends the work when the last waiter leaves
}

// Do returns fn's result for key, running fn only if no call for key is in
// flight. fn runs with a context that carries ctx's values but not its
// cancellation or deadline; it ends when every caller has returned. shared
// reports whether the result came from another caller's call.
func (c *Coalescer) Do(ctx context.Context, key string, fn func(context.Context) (json.RawMessage, error)) (res json.RawMessage, err error, shared bool) {
	c.mu.Lock()
	if c.flights == nil {
		c.flights = map[string]*flight{}
	}
	if c.joined != nil {
		close(c.joined)
		c.joined = nil
	}
	f, ok := c.flights[key]
	if ok {
		f.waiters++
	} else {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), waiters: 1, cancel: cancel}
		c.flights[key] = f
		if c.Inline {
			c.mu.Unlock()
			// The leader leaves when its context ends, as a waiter would;
			// it still runs the work for the others. (Deferred, so that
			// even a Goexit in the work leaves.)
			left := context.AfterFunc(ctx, func() { c.leave(key, f) })
			defer func() {
				if left() {
					c.leave(key, f)
				}
			}()
			c.run(wctx, key, f, fn)
			return f.res, f.err, false
		}
		go c.run(wctx, key, f, fn)
	}
	c.mu.Unlock()

	select {
	case <-f.done:
		c.leave(key, f)
		return f.res, f.err, ok
	case <-ctx.Done():
		c.leave(key, f)
		return nil, AsError(ctx.Err()), ok
	}
}

// Waiting returns how many callers are in Do for work in flight, the ones
// running it included, and a channel closed when the next caller comes.
// It costs Do a nil check, so tests use it to know that callers joined a
// flight before they let the work end (sockettest.WaitJoined).
func (c *Coalescer) Waiting() (n int, next <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.flights {
		n += f.waiters
	}
	if c.joined == nil {
		c.joined = make(chan struct{})
	}
	return n, c.joined
}

// leave drops a waiter; the last one out cancels the work and frees the
// key at once, so a caller that comes while the cancelled work winds down
// runs afresh instead of joining it and getting its cancellation.
func (c *Coalescer) leave(key string, f *flight) {
	c.mu.Lock()
	f.waiters--
	last := f.waiters == 0
	if last && c.flights[key] == f {
		delete(c.flights, key)
	}
	c.mu.Unlock()
	if last {
		f.cancel()
	}
}

func (c *Coalescer) run(ctx context.Context, key string, f *flight, fn func(context.Context) (json.RawMessage, error)) {
	returned := false
	defer func() {
		// A panic, or runtime.Goexit (which recover does not see), ends
		// the work without a result: every waiter gets INTERNAL.
		if p := recover(); p != nil || !returned {
			f.res, f.err = nil, Errorf(CodeInternal, "internal error")
		}
		c.mu.Lock()
		if c.flights[key] == f {
			delete(c.flights, key)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	f.res, f.err = fn(ctx)
	returned = true
}

// Scope returns the visibility scope of a principal for per-caller
// answers: its subject and roles, quoted so no two principals share one.
func (p Principal) Scope() string {
	var b strings.Builder
	b.WriteString(strconv.Quote(p.Subject))
	for _, r := range p.Roles {
		b.WriteByte(',')
		b.WriteString(strconv.Quote(r))
	}
	return b.String()
}
