package gateway

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
)

// restPath is what a REST path names before the route table is consulted.
type restPath struct {
	version, resource string
	// id and segment are the id and the action segment; for a path of
	// three segments the third is in id and ambiguous is set, since only
	// the resource knows whether it is an id or a collection action.
	id, segment string
	ambiguous   bool
}

// restMethod reports whether REST routes take a method.
func restMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// parsePath is the one split of a REST request's escaped URL path, of the
// forms /{version}/{resource}, /{version}/{resource}/{x} and
// /{version}/{resource}/{id}/{action}. Segments are unescaped one by one,
// so an encoded slash cannot pass for a separator. It refuses, in order:
// dot segments anywhere (400), a method no route takes (405, or 404 when
// no route has the path's form), paths of other forms (404), and bad
// segments: invalid percent-encoding (400), empty (404), with a slash or
// NUL (400), not UTF-8 once unescaped (400). The status is 0 when the error's code decides it.
func parsePath(method, escaped string) (restPath, int, *socket.Error) {
	if !strings.HasPrefix(escaped, "/") {
		return restPath{}, 0, socket.Errorf(socket.CodeInvalidArgument, "malformed path")
	}
	raw := strings.Split(escaped[1:], "/")
	for _, r := range raw {
		if dotSegment(r) {
			return restPath{}, 0, dotSegmentsError()
		}
	}
	restForm := len(raw) >= 2 && len(raw) <= 4
	if !restMethod(method) {
		if restForm {
			return restPath{}, statusMethodNotAllowed, socket.Errorf(socket.CodeNotSupported, "method %s is not supported here", method)
		}
		return restPath{}, 0, socket.Errorf(socket.CodeNotFound, "no route for %s %s", method, escaped)
	}
	if !restForm {
		return restPath{}, 0, socket.Errorf(socket.CodeNotFound, "no route for %s %s", method, escaped)
	}
	segs := make([]string, len(raw))
	for i, r := range raw {
		s, err := url.PathUnescape(r)
		switch {
		case err != nil:
			return restPath{}, 0, socket.Errorf(socket.CodeInvalidArgument, "path segment %d is not valid percent-encoding", i+1)
		case s == "":
			return restPath{}, 0, socket.Errorf(socket.CodeNotFound, "no route for path %q: empty segment", escaped)
		case strings.ContainsAny(s, "/\\\x00"):
			return restPath{}, 0, socket.Errorf(socket.CodeInvalidArgument, "path segment %d contains a slash or NUL", i+1)
		case !utf8.ValidString(s):
			return restPath{}, 0, notUTF8("path", fmt.Sprintf("path segment %d", i+1))
		}
		segs[i] = s
	}
	p := restPath{version: segs[0], resource: segs[1]}
	switch len(segs) {
	case 3:
		p.id, p.ambiguous = segs[2], true
	case 4:
		p.id, p.segment = segs[2], segs[3]
	}
	return p, 0, nil
}

// dotSegment reports whether an escaped path segment is . or .., encoded
// or not.
func dotSegment(raw string) bool {
	s, err := url.PathUnescape(raw)
	return err == nil && (s == "." || s == "..")
}

func dotSegmentsError() *socket.Error {
	return socket.Errorf(socket.CodeInvalidArgument, "dot segments are not allowed in paths")
}

// validID reports whether an id may travel as a path segment: not empty,
// not a dot segment, without slashes, backslashes or NUL.
func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\\\x00")
}

// resolved is a route found in a version's table.
type resolved struct {
	version  *config.Version
	resource *config.Resource
	route    *config.Route
	id       string
}

// resolveError is a path the table does not serve: NOT_FOUND, or a method
// the path does not take (allow is set: 405).
type resolveError struct {
	err   *socket.Error
	allow []string
}

// resolve finds the route for a path and method. It never panics on any
// input (see FuzzResolve).
func resolve(cfg *config.Config, p restPath, method string) (resolved, *resolveError) {
	v := cfg.Versions[p.version]
	if v == nil {
		return resolved{}, &resolveError{err: socket.Errorf(socket.CodeNotFound, "unknown API version %q", p.version).
			WithDetails(map[string]any{"version": p.version, "versions": sortedKeys(cfg.Versions)})}
	}
	res := v.Resources[p.resource]
	if res == nil {
		return resolved{}, &resolveError{err: socket.Errorf(socket.CodeNotFound, "API version %s has no resource %q", v.Name, p.resource).
			WithDetails(map[string]any{"version": v.Name, "resource": p.resource})}
	}
	form, id, segment := config.FormCollection, p.id, p.segment
	switch {
	case p.ambiguous && res.HasCollectionAction(p.id):
		form, id, segment = config.FormCollectionAction, "", p.id
	case p.ambiguous || (id != "" && segment == ""):
		form = config.FormItem
	case segment != "" && id != "":
		form = config.FormItemAction
	case segment != "":
		form = config.FormCollectionAction
	}
	route, allow := res.Lookup(form, segment, method)
	if route != nil {
		return resolved{version: v, resource: res, route: route, id: id}, nil
	}
	if len(allow) > 0 {
		return resolved{}, &resolveError{allow: allow, err: socket.Errorf(socket.CodeNotSupported, "%s is not allowed here; allowed: %s", method, strings.Join(allow, ", ")).
			WithDetails(map[string]any{"method": method, "allow": allow})}
	}
	what := "item routes"
	switch form {
	case config.FormCollection:
		what = "collection routes"
	case config.FormItemAction, config.FormCollectionAction:
		what = "action " + segment
	}
	return resolved{}, &resolveError{err: socket.Errorf(socket.CodeNotFound, "resource %s in API version %s has no %s", res.Name, v.Name, what).
		WithDetails(map[string]any{"version": v.Name, "resource": res.Name, "action": segment})}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
