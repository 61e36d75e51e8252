package socket

import (
	"bytes"
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
	mu      sync.Mutex // guards flights
	flights map[string]*flight
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
	f, ok := c.flights[key]
	if ok {
		f.waiters++
	} else {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), waiters: 1, cancel: cancel}
		c.flights[key] = f
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

// CoalesceKey builds the key of a read: the action, the resource id, the
// body in canonical form (so key order and spacing do not matter), the API
// version and the caller's visibility scope ("" when the answer is the
// same for everyone).
func CoalesceKey(action, id string, body []byte, version, scope string) string {
	var b strings.Builder
	b.Grow(len(action) + len(id) + len(body) + len(version) + len(scope) + 8)
	for _, part := range []string{action, id, version, scope} {
		b.WriteString(part)
		b.WriteByte(0)
	}
	b.Write(CanonicalJSON(body))
	return b.String()
}

// CanonicalJSON returns body with insignificant differences removed:
// whitespace, and the order of object keys. Invalid JSON is returned as is.
func CanonicalJSON(body []byte) []byte {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil
	}
	if trimmed[0] != '{' && trimmed[0] != '[' {
		var out bytes.Buffer
		if json.Compact(&out, trimmed) != nil {
			return trimmed
		}
		return out.Bytes()
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return trimmed
	}
	out, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		return trimmed
	}
	return out
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
