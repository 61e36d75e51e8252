package socket

import (
	"context"

	"github.com/streamgate/streamgate/services/socket/internal/wire"
)

// requestState is what the server keeps in a handler's context: the
// request's meta, and whether the handler said its answer is a replay.
// The handler's goroutine writes replayed; the server reads it after the
// handler returned.
type requestState struct {
	meta     *Meta
	replayed bool
}

// MarkReplayed tells the server that the handler's answer is the stored
// outcome of an earlier request with the same idempotency key: the
// service did not act again. The response carries the flag (Reply.Replayed
// at the caller), so a caller that undoes what its own run created (a
// pipeline's compensation) leaves a replayed outcome alone. Call it from
// the handler's goroutine before the handler returns; it works inside
// Typed handlers and is a no-op outside a request and in a coalesced
// read's shared run.
func MarkReplayed(ctx context.Context) {
	if st, ok := wire.MetaValue(ctx).(*requestState); ok {
		st.replayed = true
	}
}

// replayedIn reports whether the handler running under ctx called
// MarkReplayed.
func replayedIn(ctx context.Context) bool {
	st, ok := wire.MetaValue(ctx).(*requestState)
	return ok && st.replayed
}
