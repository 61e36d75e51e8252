package wire

import "context"

// metaKey is the context key of a request's meta, shared by the runtime
// (which puts the meta a handler was called with in its context) and the
// request library (which sends the meta it finds with each request).
type metaKey struct{}

// WithMeta returns ctx carrying v: the runtime's request meta (a
// *socket.Meta) or its per-request state holding it.
func WithMeta(ctx context.Context, v any) context.Context {
	return context.WithValue(ctx, metaKey{}, v)
}

// MetaValue returns what WithMeta put in ctx, or nil.
func MetaValue(ctx context.Context) any { return ctx.Value(metaKey{}) }
