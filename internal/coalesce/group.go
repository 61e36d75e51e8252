package coalesce

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
)

// ErrAbandoned is what every caller of a Group gets when the shared work
// panicked or called runtime.Goexit instead of returning. The runtime and
// the gateway answer it as INTERNAL without the panic's value.
var ErrAbandoned = errors.New("coalesce: the shared work ended without an answer")

// Group runs identical work once for every caller waiting for it at the
// same moment. Unlike golang.org/x/sync/singleflight, the shared work runs
// under a context of its own that ends only when every waiting caller has
// given up (a leader that gives up does not fail the others), and a panic
// in it becomes ErrAbandoned for every waiter instead of crashing the
// process; the key is free again as soon as the work ends. The zero value
// is ready to use.
type Group struct {
	// Inline runs the work on the first caller's goroutine instead of a
	// goroutine of its own: cheaper, but that caller returns only when the
	// work ends, even if its context ends first (the work is still
	// cancelled when every caller has gone). Right for callers whose own
	// caller has already moved on, such as a service answering a frame.
	Inline bool
	// Go starts the shared work when Inline is not set; nil starts a
	// goroutine of its own. A pool of reused goroutines (internal/workers)
	// saves each flight growing a fresh stack.
	Go func(func())

	mu      sync.Mutex // guards flights, joined
	flights map[string]*flight
	joined  chan struct{} // closed when the next caller comes; nil unless Waiting made it
}

// flight is one piece of shared work.
type flight struct {
	done    chan struct{} // closed when res and err are set; set under Group.mu, made only when someone waits on it (see Do)
	res     json.RawMessage
	err     error
	waiters int                // callers still waiting; guarded by Group.mu
	cancel  context.CancelFunc // ends the work when the last waiter leaves
}

// Do returns fn's result for key, running fn only if no call for key is in
// flight. fn runs with a context that carries ctx's values but not its
// cancellation or deadline; it ends when every caller has returned. A
// caller whose ctx ends first gets ctx.Err(). shared reports whether the
// result came from another caller's call.
func (g *Group) Do(ctx context.Context, key string, fn func(context.Context) (json.RawMessage, error)) (res json.RawMessage, err error, shared bool) {
	g.mu.Lock()
	if g.flights == nil {
		g.flights = map[string]*flight{}
	}
	if g.joined != nil {
		close(g.joined)
		g.joined = nil
	}
	f, ok := g.flights[key]
	if ok {
		f.waiters++
		if f.done == nil {
			f.done = make(chan struct{})
		}
	} else {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{waiters: 1, cancel: cancel}
		g.flights[key] = f
		if g.Inline {
			// The leader does not wait on done: a read that nobody joins
			// (most of them) makes no channel.
			g.mu.Unlock()
			// The leader leaves when its context ends, as a waiter would;
			// it still runs the work for the others. (Deferred, so that
			// even a Goexit in the work leaves.)
			left := context.AfterFunc(ctx, func() { g.leave(key, f) })
			defer func() {
				if left() {
					g.leave(key, f)
				}
			}()
			g.run(wctx, key, f, fn)
			return f.res, f.err, false
		}
		f.done = make(chan struct{})
		if g.Go != nil {
			g.Go(func() { g.run(wctx, key, f, fn) })
		} else {
			go g.run(wctx, key, f, fn)
		}
	}
	g.mu.Unlock()

	select {
	case <-f.done:
		g.leave(key, f)
		return f.res, f.err, ok
	case <-ctx.Done():
		g.leave(key, f)
		return nil, ctx.Err(), ok
	}
}

// Waiting returns how many callers are in Do for work in flight, the ones
// running it included, and a channel closed when the next caller comes.
// It costs Do a nil check, so tests use it to know that callers joined a
// flight before they let the work end (sockettest.WaitJoined).
func (g *Group) Waiting() (n int, next <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, f := range g.flights {
		n += f.waiters
	}
	if g.joined == nil {
		g.joined = make(chan struct{})
	}
	return n, g.joined
}

// leave drops a waiter; the last one out cancels the work and frees the
// key at once, so a caller that comes while the cancelled work winds down
// runs afresh instead of joining it and getting its cancellation.
func (g *Group) leave(key string, f *flight) {
	g.mu.Lock()
	f.waiters--
	last := f.waiters == 0
	if last && g.flights[key] == f {
		delete(g.flights, key)
	}
	g.mu.Unlock()
	if last {
		f.cancel()
	}
}

func (g *Group) run(ctx context.Context, key string, f *flight, fn func(context.Context) (json.RawMessage, error)) {
	returned := false
	defer func() {
		// A panic, or runtime.Goexit (which recover does not see), ends
		// the work without a result: every waiter gets ErrAbandoned.
		if p := recover(); p != nil || !returned {
			f.res, f.err = nil, ErrAbandoned
		}
		g.mu.Lock()
		if g.flights[key] == f {
			delete(g.flights, key)
		}
		done := f.done // no caller joins once the key is free
		g.mu.Unlock()
		if done != nil {
			close(done)
		}
	}()
	f.res, f.err = fn(ctx)
	returned = true
}
