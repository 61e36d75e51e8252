// Package actionroute finds the REST route of an API version that sends a
// given action, so that callers who name actions in the seed's form
// (UPDATE_USER 1 {…}) are routed exactly like REST: `streamgate call
// -gateway` and the gateway's WebSocket endpoint both use it.
//
//	r, ok := actionroute.Find(routes, "", "UPDATE_USER", true)
//	// r.Method "PUT", r.Resource "users", r.Segment "", r.Item true
//	// → PUT /v1/users/{id}
package actionroute

import "strings"

// Route is one route of a version's table as ListRoutes shows it: its
// method, its path template (/v1/users/{id}/check_purchasable) and, for a
// route without a pipeline, the service and action it sends.
type Route struct {
	Method, Path, Service, Action string
}

// Target is where a found route is reached: the method, the resource, the
// action segment (empty for CRUD routes) and whether the path takes an id.
type Target struct {
	Method, Resource, Segment string
	Item                      bool
}

// Find returns the route that sends action (of service, or of any service
// when service is empty). When several do, withID prefers an item route
// (one whose path takes an id) and !withID a collection route; otherwise
// the first in the list wins, so callers pass routes in a stable order.
func Find(routes []Route, service, action string, withID bool) (Target, bool) {
	var best Target
	found := false
	if action == "" {
		return best, false
	}
	for _, r := range routes {
		if r.Action != action || (service != "" && r.Service != service) {
			continue
		}
		t, ok := targetOf(r)
		if !ok {
			continue
		}
		if !found || t.Item == withID {
			best, found = t, true
		}
		if t.Item == withID {
			break
		}
	}
	return best, found
}

// targetOf splits a route's path template: /version/resource,
// /version/resource/{id}, /version/resource/segment or
// /version/resource/{id}/segment.
func targetOf(r Route) (Target, bool) {
	parts := strings.Split(strings.TrimPrefix(r.Path, "/"), "/")
	if len(parts) < 2 || len(parts) > 4 {
		return Target{}, false
	}
	t := Target{Method: r.Method, Resource: parts[1]}
	t.Item = len(parts) > 2 && parts[2] == "{id}"
	switch {
	case len(parts) == 4:
		t.Segment = parts[3]
	case len(parts) == 3 && !t.Item:
		t.Segment = parts[2]
	}
	return t, true
}
