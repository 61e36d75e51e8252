package caller

import (
	"context"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/internal/deadline"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
)

// ContextWithMeta returns a context carrying meta: the client sends it
// with every request made with that context. Inside a handler there is
// no need: the server puts the meta the handler was called with in its
// context, so a handler calling another service forwards the version,
// principal and trace it was called with. socket.MetaFrom reads either.
func ContextWithMeta(ctx context.Context, m socket.Meta) context.Context {
	return wire.WithMeta(ctx, &m)
}

// WithDeadline is context.WithDeadline without a timer per request: a
// request made with it (meta added by ContextWithMeta included) is failed at
// d by its stream's one timer; a timer is made only if Done is asked for.
func WithDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	return deadline.New(parent, d)
}
