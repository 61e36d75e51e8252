package invoke

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
	"github.com/streamgate/streamgate/status"
)

// Path is what a REST path (or a WebSocket frame's, or an Invoke's
// parts) names before the route table is consulted.
type Path struct {
	version, resource string
	// id and segment are the id and the action segment; for a path of
	// three segments the third is in id and ambiguous is set, since only
	// the resource knows whether it is an id or a collection action.
	id, segment string
	ambiguous   bool
}

// NewPath names a route's path by its parts: an item's id and an
// action's segment may be empty. Nothing is checked until Invoke.
func NewPath(version, resource, id, segment string) Path {
	return Path{version: version, resource: resource, id: id, segment: segment}
}

// Version is the API version the path names.
func (p Path) Version() string { return p.version }

// IsOpenAPI reports whether the path names a version's OpenAPI document,
// /{version}/openapi.json.
func (p Path) IsOpenAPI() bool { return p.id == "" && p.resource == openAPIFile }

// openAPIFile is the last segment of a version's OpenAPI document's path.
const openAPIFile = "openapi.json"

// restMethod reports whether REST routes take a method.
func restMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// ParsePath is the one split of a REST request's escaped URL path, of the
// forms /{version}/{resource}, /{version}/{resource}/{x} and
// /{version}/{resource}/{id}/{action}. Segments are unescaped one by one,
// so an encoded slash cannot pass for a separator. It refuses, in order:
// dot segments anywhere (400), a method no route takes (405, or 404 when
// no route has the path's form), paths of other forms (404), and bad
// segments: invalid percent-encoding (400), empty (404), with a slash or
// NUL (400), not UTF-8 once unescaped (400). The status is 0 when the error's code decides it.
func ParsePath(method, escaped string) (Path, int, *status.Error) {
	if !strings.HasPrefix(escaped, "/") {
		return Path{}, 0, socket.Errorf(socket.CodeInvalidArgument, "malformed path")
	}
	var raw [maxSegments]string // the first segments: a route's path has at most maxSegments
	n := 0
	for rest, more := escaped[1:], true; more; n++ {
		var r string
		r, rest, more = strings.Cut(rest, "/")
		if DotSegment(r) {
			return Path{}, 0, DotSegmentsError()
		}
		if n < len(raw) {
			raw[n] = r
		}
	}
	restForm := segmentsFit(n)
	if !restMethod(method) {
		if restForm {
			return Path{}, StatusMethodNotAllowed, socket.Errorf(socket.CodeNotSupported, "method %s is not supported here", method)
		}
		return Path{}, 0, socket.Errorf(socket.CodeNotFound, "no route for %s %s", method, escaped)
	}
	if !restForm {
		return Path{}, 0, socket.Errorf(socket.CodeNotFound, "no route for %s %s", method, escaped)
	}
	var segs [maxSegments]string
	for i, r := range raw[:n] {
		s, err := url.PathUnescape(r)
		switch {
		case err != nil:
			return Path{}, 0, socket.Errorf(socket.CodeInvalidArgument, "path segment %d is not valid percent-encoding", i+1)
		case s == "":
			return Path{}, 0, socket.Errorf(socket.CodeNotFound, "no route for path %q: empty segment", escaped)
		case strings.ContainsAny(s, "/\\\x00"):
			return Path{}, 0, socket.Errorf(socket.CodeInvalidArgument, "path segment %d contains a slash or NUL", i+1)
		case !utf8.ValidString(s):
			return Path{}, 0, notUTF8("path", fmt.Sprintf("path segment %d", i+1))
		}
		segs[i] = s
	}
	p := Path{version: segs[0], resource: segs[1]}
	switch n {
	case 3:
		p.id, p.ambiguous = segs[2], true
	case 4:
		p.id, p.segment = segs[2], segs[3]
	}
	return p, 0, nil
}

// RESTForm reports whether an escaped path has the form of a REST route:
// /{version}/{resource}, with an id, an action or both.
func RESTForm(escaped string) bool {
	return strings.HasPrefix(escaped, "/") && segmentsFit(strings.Count(escaped, "/"))
}

// segmentsFit reports whether a path of n segments may be a route's.
func segmentsFit(n int) bool { return n >= 2 && n <= maxSegments }

// maxSegments is the most segments a route's path has:
// /{version}/{resource}/{id}/{action}.
const maxSegments = 4

// DotSegment reports whether an escaped path segment is . or .., encoded
// or not.
func DotSegment(raw string) bool {
	s, err := url.PathUnescape(raw)
	return err == nil && (s == "." || s == "..")
}

// DotSegmentsError refuses a path with dot segments.
func DotSegmentsError() *status.Error {
	return socket.Errorf(socket.CodeInvalidArgument, "dot segments are not allowed in paths")
}

// ValidID reports whether an id may travel as a path segment: not empty,
// not a dot segment, without slashes, backslashes or NUL.
func ValidID(id string) bool {
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
	err   *status.Error
	allow []string
}

// resolve finds the route for a path and method. It never panics on any
// input (see FuzzResolve).
func resolve(cfg *config.Config, p Path, method string) (resolved, *resolveError) {
	v := cfg.Versions[p.version]
	if v == nil {
		return resolved{}, &resolveError{err: socket.Errorf(socket.CodeNotFound, "unknown API version %q", p.version).
			WithDetails(map[string]any{"version": p.version, "versions": SortedKeys(cfg.Versions)})}
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

// SortedKeys returns a map's keys in order.
func SortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// RouteTemplate is a route's path template, e.g. /v1/orders/{id}/pay.
func RouteTemplate(version, resource string, rt *config.Route) string {
	base := "/" + version + "/" + resource
	switch rt.Form {
	case config.FormItem:
		return base + "/{id}"
	case config.FormItemAction:
		return base + "/{id}/" + rt.Segment
	case config.FormCollectionAction:
		return base + "/" + rt.Segment
	}
	return base
}
