package invoke

import (
	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// anonymous is the principal forwarded for callers without credentials,
// so a service never mistakes them for the gateway's own key.
var anonymous = socket.Principal{Subject: socket.AnonymousSubject}

// prepared is what prepare learns of an invocation: its route and its
// caller.
type prepared struct {
	resolved
	principal socket.Principal
}

// prepare resolves the route and checks the caller, before any body is
// read, and notes both in the invocation. A refused caller's invocation
// still names the route and whom the credentials proved, if anyone, for
// the access log.
func prepare(t *Table, in *Invocation) *Answer {
	if e := in.Path.checkText(); e != nil {
		a := Failed(e)
		return &a
	}
	rr, rerr := resolve(t.cfg, in.Path, in.Method)
	if rerr != nil {
		a := Failed(rerr.err)
		if rerr.allow != nil {
			a = Answer{Status: StatusMethodNotAllowed, Err: rerr.err, Allow: rerr.allow}
		}
		return &a
	}
	principal, err := t.Authorize(in.Authorization, in.APIKey, rr.route.Access)
	in.prepared = prepared{resolved: rr, principal: principal} // even when refused: the refusal counts under its route; principal: for the access log
	if err != nil {
		a := Failed(err)
		return &a
	}
	return nil
}

// Authorize is the one check of a caller: it authenticates the
// credentials (an Authorization and an X-API-Key header's values) and
// checks an access rule. A caller without credentials is anonymous; a
// refused caller's principal is whom the credentials proved, if anyone.
func (t *Table) Authorize(authorization, apiKey string, access config.Access) (socket.Principal, *status.Error) {
	principal, present, err := t.Authenticate(authorization, apiKey)
	if err == nil {
		err = status.AsError(auth.Allow(access, principal, present))
	}
	if err != nil {
		return principal, err
	}
	if !present {
		principal = anonymous
	}
	return principal, nil
}

// Authenticate checks credentials as every route does, whatever its
// access rule, and returns whom they prove: present is false without
// any.
func (t *Table) Authenticate(authorization, apiKey string) (p socket.Principal, present bool, err *status.Error) {
	principal, present, aerr := t.auth.Authenticate(authorization, apiKey)
	if aerr == nil && present && principal.Subject == anonymous.Subject {
		aerr = socket.Errorf(socket.CodeUnauthenticated, "the subject %q is reserved", anonymous.Subject)
	}
	return principal, present, status.AsError(aerr)
}
