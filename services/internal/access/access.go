// Package access holds the services' checks of who calls: whether a
// principal is signed in, and middleware that refuses actions to callers
// who are not admins or not signed in.
//
//	srv.Handle("DELETE_ITEM", access.AdminOnly("delete items")(socket.Typed(s.delete)))
//	if !access.SignedIn(socket.MetaFrom(ctx).Principal) { … }
package access

import (
	"context"
	"encoding/json"

	"github.com/streamgate/streamgate/services/socket"
)

// SignedIn reports whether p is a signed-in caller: a subject other than
// "" and socket.AnonymousSubject.
func SignedIn(p socket.Principal) bool {
	return p.Subject != "" && p.Subject != socket.AnonymousSubject
}

// AdminOnly returns middleware that answers PERMISSION_DENIED "only admins
// may WHAT" (e.g. what = "delete items") to callers without
// socket.RoleAdmin, before the body is decoded, and passes the others on.
func AdminOnly(what string) func(socket.Handler) socket.Handler {
	return func(next socket.Handler) socket.Handler {
		return socket.HandlerFunc(func(ctx context.Context, req *socket.Request) (json.RawMessage, error) {
			if !socket.MetaFrom(ctx).Principal.HasRole(socket.RoleAdmin) {
				return nil, socket.Errorf(socket.CodePermissionDenied, "only admins may %s", what)
			}
			return next.ServeAction(ctx, req)
		})
	}
}

// SignInOnly returns middleware that answers UNAUTHENTICATED with message
// (e.g. "sign in to use orders") to callers who are not signed in, before
// the body is decoded, and passes the others on.
func SignInOnly(message string) func(socket.Handler) socket.Handler {
	return func(next socket.Handler) socket.Handler {
		return socket.HandlerFunc(func(ctx context.Context, req *socket.Request) (json.RawMessage, error) {
			if !SignedIn(socket.MetaFrom(ctx).Principal) {
				return nil, socket.Errorf(socket.CodeUnauthenticated, "%s", message)
			}
			return next.ServeAction(ctx, req)
		})
	}
}
