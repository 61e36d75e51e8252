// Package actions registers a service's actions on a socket server and
// keeps the first error, so that a service's Register reads as its action
// table.
//
//	r := actions.On(srv)
//	r.Handle("GET_USER", socket.Typed(s.get), socket.Read())
//	r.Handle("LIST_USERS", access.AdminOnly("list users")(socket.Typed(s.list)), socket.Read())
//	return r.Err()
package actions

import "github.com/streamgate/streamgate/services/socket"

// Registrar registers actions on one server until one fails.
type Registrar struct {
	srv *socket.Server
	err error // the first error of Handle
}

// On returns a Registrar for srv.
func On(srv *socket.Server) *Registrar { return &Registrar{srv: srv} }

// Handle registers the action as srv.Handle does; after an error it does
// nothing.
func (r *Registrar) Handle(name string, h socket.Handler, opts ...socket.ActionOption) {
	if r.err == nil {
		r.err = r.srv.Handle(name, h, opts...)
	}
}

// Err returns the first error of Handle, or nil.
func (r *Registrar) Err() error { return r.err }
