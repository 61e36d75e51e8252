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

// CoalesceKey builds the key of a read: the action, the resource id, the
// body in canonical form (so key order and spacing do not matter), the API
// version, the caller's visibility scope ("" when the answer is the same
// for everyone) and the read's epoch (Meta.ReadEpoch: reads of different
// epochs never share an answer).
func CoalesceKey(action, id string, body []byte, version, scope, epoch string) string {
	var b strings.Builder
	b.Grow(len(action) + len(id) + len(body) + len(version) + len(scope) + len(epoch) + 8)
	for _, part := range []string{action, id, version, scope, epoch} {
		b.WriteString(part)
		b.WriteByte(0)
	}
	b.Write(CanonicalJSON(body))
	return b.String()
}

// CanonicalJSON returns body with insignificant differences removed:
// whitespace, and the order of object keys. Invalid JSON is returned as is.
// A body that is already compact with its keys in order (most bodies) is
// returned without being decoded.
func CanonicalJSON(body []byte) []byte {
	trimmed := bytes.Trim(body, " \t\r\n") // JSON's whitespace only
	if len(trimmed) == 0 {
		return nil
	}
	if alreadyCanonical(trimmed) {
		return trimmed
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.InputOffset() != int64(len(trimmed)) || foldedKeys(v) {
		// Invalid, trailing data, or keys that differ only in case (Go
		// decodes those into one field, so their order matters): keep
		// the bytes, which only share answers with identical bodies.
		return trimmed
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)  // as the fast path leaves <, > and & alone
	if enc.Encode(v) != nil { // maps encode with sorted keys
		return trimmed
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}

// foldedKeys reports whether any object in v has two keys equal under
// case folding.
func foldedKeys(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		seen := make(map[string]bool, len(t))
		for k, e := range t {
			f := strings.ToLower(k)
			if seen[f] || foldedKeys(e) {
				return true
			}
			seen[f] = true
		}
	case []any:
		for _, e := range t {
			if foldedKeys(e) {
				return true
			}
		}
	}
	return false
}

// alreadyCanonical reports, in one pass and without allocating for
// shallow bodies, whether body has no whitespace outside strings and every
// object's keys (none escaped) in increasing order. It does not validate:
// invalid JSON that passes stays as it is, which only means it is coalesced
// with byte-identical bodies.
func alreadyCanonical(body []byte) bool {
	var lastKey [16][]byte // per nesting depth: the previous key, nil at an object's start
	var isObject [16]bool
	depth := 0
	expectKey := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case ' ', '\t', '\n', '\r':
			return false
		case '{', '[':
			if depth++; depth >= len(lastKey) {
				return false
			}
			isObject[depth], lastKey[depth] = c == '{', nil
			expectKey = c == '{'
		case '}', ']':
			if depth == 0 {
				return false
			}
			depth--
			expectKey = false
		case ',':
			expectKey = isObject[depth]
		case '"':
			start := i + 1
			for i++; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					if expectKey {
						return false // escaped keys: let the decoder compare them
					}
					i++
				}
			}
			if expectKey {
				key := body[start:min(i, len(body))]
				if lastKey[depth] != nil && bytes.Compare(lastKey[depth], key) >= 0 {
					return false
				}
				lastKey[depth] = key
				expectKey = false
			}
		}
	}
	return depth == 0
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
