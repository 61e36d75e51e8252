package wire

import "context"

// metaKey is the context key of a request's meta, shared by the runtime
// (which puts the meta a handler was called with in its context) and the
// request library (which sends the meta it finds with each request).
type metaKey struct{}

// MetaContext is a context carrying a request's meta and nothing else: its
// deadline, Done and Err are its parent's, so one who waits for a request
// may wait on the parent's instead (UnderMeta). WithMeta makes one; the
// runtime holds one in each request's state (Init).
type MetaContext struct {
	context.Context
	meta any
}

// Value returns the meta for metaKey, else the parent's value.
func (c *MetaContext) Value(key any) any {
	if _, ok := key.(metaKey); ok {
		return c.meta
	}
	return c.Context.Value(key)
}

// WithMeta returns ctx carrying v: the runtime's request meta (a
// *socket.Meta) or its per-request state holding it.
func WithMeta(ctx context.Context, v any) context.Context {
	return &MetaContext{Context: ctx, meta: v}
}

// Init makes c what WithMeta(parent, v) returns, for one held inside
// a larger struct to save its allocation.
func (c *MetaContext) Init(parent context.Context, v any) {
	c.Context, c.meta = parent, v
}

// MetaValue returns what WithMeta put in ctx, or nil.
func MetaValue(ctx context.Context) any { return ctx.Value(metaKey{}) }

// UnderMeta returns the context WithMeta made ctx from, which ends exactly
// when ctx does, and true; or ctx and false when WithMeta did not make it.
func UnderMeta(ctx context.Context) (context.Context, bool) {
	if c, ok := ctx.(*MetaContext); ok {
		return c.Context, true
	}
	return ctx, false
}
