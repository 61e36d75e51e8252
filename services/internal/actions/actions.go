// Package actions registers a service's actions on a socket server and
// keeps the first error, so that a service's Register reads as its action
// table. Every action it registers answers a database it cannot reach
// with UNAVAILABLE (the gateway's 503 with Retry-After: try again later),
// not INTERNAL; the cause is logged, never sent.
//
//	r := actions.On(srv)
//	r.Handle("GET_USER", socket.Typed(s.get), socket.Read())
//	r.Handle("LIST_USERS", access.AdminOnly("list users")(socket.Typed(s.list)), socket.Read())
//	return r.Err()
package actions

import (
	"context"
	"encoding/json"

	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// Registrar registers actions on one server until one fails.
type Registrar struct {
	srv *socket.Server
	err error // the first error of Handle
}

// On returns a Registrar for srv.
func On(srv *socket.Server) *Registrar { return &Registrar{srv: srv} }

// Handle registers the action as srv.Handle does, with outages of the
// database answered UNAVAILABLE; after an error it does nothing.
func (r *Registrar) Handle(name string, h socket.Handler, opts ...socket.ActionOption) {
	if r.err == nil {
		r.err = r.srv.Handle(name, outagesUnavailable(h), opts...)
	}
}

// retryAfterMs is how long a caller is told to wait after an outage.
const retryAfterMs = 1000

// outagesUnavailable answers the handler's errors that say the database
// cannot be reached (sqldb.IsUnreachable) with UNAVAILABLE, reason
// database_unavailable, the error as the cause. Errors that already chose
// their code pass unchanged.
func outagesUnavailable(next socket.Handler) socket.Handler {
	return socket.HandlerFunc(func(ctx context.Context, req *socket.Request) (json.RawMessage, error) {
		res, err := next.ServeAction(ctx, req)
		if err == nil || status.AsError(err).Code != socket.CodeInternal || !sqldb.IsUnreachable(err) {
			return res, err
		}
		return nil, socket.Errorf(socket.CodeUnavailable, "the service's database is unavailable; try again later").
			WithDetails(map[string]any{socket.DetailReason: "database_unavailable", socket.DetailRetryAfterMs: retryAfterMs}).
			WithCause(err)
	})
}

// Err returns the first error of Handle, or nil.
func (r *Registrar) Err() error { return r.err }
