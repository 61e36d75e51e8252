package config

import (
	"slices"
	"time"
)

// routing builds the routes of resources, checking the services they
// name and filling in their deadlines.
type routing struct {
	*problems
	services       map[string]*Service
	defaultTimeout time.Duration // http.default_timeout
}

// settings are what a resource, then an action, set for their routes.
type settings struct {
	service  string
	access   Access
	caching  Caching
	cacheTTL time.Duration
	timeout  time.Duration // 0: the service's, else http.default_timeout
	// idempotency is "" when neither sets one: optional for writes, off
	// for GET.
	idempotency Idempotency
	// own is set for an action's own cache_ttl and idempotency, which
	// apply to every method it takes; a resource's apply to GET (cache)
	// or to writes (idempotency) only.
	ownTTL, ownIdempotency bool
}

// route makes the route of a method on a path form.
func (l routing) route(s settings, form Form, segment, method, action string, line int) *Route {
	rt := &Route{
		Form: form, Segment: segment, Method: method, Service: s.service, Action: action,
		Access: s.access, Caching: s.caching, Timeout: l.timeout(s.timeout, s.service),
		Idempotency: IdempotencyOptional, Line: line,
	}
	if method == "GET" || s.ownTTL {
		rt.CacheTTL = s.cacheTTL
	}
	switch {
	case s.idempotency != "" && (method != "GET" || s.ownIdempotency):
		rt.Idempotency = s.idempotency
	case method == "GET":
		rt.Idempotency = IdempotencyOff
	}
	return rt
}

// routePath shows a route's REST path below the version, for messages.
func routePath(resource string, rt *Route) string {
	switch rt.Form {
	case FormItem:
		return "/" + resource + "/{id}"
	case FormItemAction:
		return "/" + resource + "/{id}/" + rt.Segment
	case FormCollectionAction:
		return "/" + resource + "/" + rt.Segment
	}
	return "/" + resource
}

// resource checks one resource of a version and builds its routes: the
// CRUD convention, then the custom actions.
func (l routing) resource(e entry[yamlResource]) *Resource {
	r := &Resource{Name: e.Key, Line: e.line()}
	y := &e.V
	if !isSegment(r.Name) {
		l.addf(e.at, "resource name must be %s", segmentRule)
	}
	switch {
	case e.Null:
		l.addf(e.at, "expected a service name or a mapping")
		return r
	case !y.At.found():
		return r // not a mapping: reported
	case !y.Service.Set:
		l.addf(e.at, "service is required")
	}
	def := settings{
		service:     l.serviceRef(y.Service),
		access:      y.Access.V,
		cacheTTL:    y.CacheTTL.V,
		timeout:     time.Duration(y.Timeout.V),
		caching:     l.caching(&y.yamlRoute, Caching{}),
		idempotency: l.idempotency(y.Idempotency),
	}
	r.Service = def.service
	r.NoConflate = y.Conflate.Set && !y.Conflate.V
	r.Singular = y.Singular.or(singular(r.Name))
	if !y.Singular.Set && r.Singular == "" {
		l.addf(e.at, "no singular can be made from %q; set singular", r.Name)
	}
	// A method on a path form has one route.
	type routeKey struct {
		form            Form
		segment, method string
	}
	lines := map[routeKey]int{} // the line of each route added
	add := func(rt *Route, where at) {
		key := routeKey{rt.Form, rt.Segment, rt.Method}
		if line, dup := lines[key]; dup {
			l.addf(where, "%s %s is defined twice (first at line %d)", rt.Method, routePath(r.Name, rt), line)
			return
		}
		lines[key] = rt.Line
		r.Routes = append(r.Routes, rt)
	}
	for _, rt := range l.crud(y.CRUD, e.at, r, def) {
		add(rt, e.at)
	}
	for _, a := range y.Actions {
		for _, rt := range l.action(a, def) {
			add(rt, a.At)
		}
	}
	return r
}

// crudOps are the CRUD operations in the order their routes are listed.
func crudOps() []string { return []string{"get", "list", "create", "update", "delete"} }

// crud returns the CRUD routes that the resource's crud list names (all when
// it is absent): GET_ONE, LIST_MANY, CREATE_ONE, UPDATE_ONE (PUT and
// PATCH) and DELETE_ONE.
func (l routing) crud(ops val[seq[val[text]]], where at, r *Resource, def settings) []*Route {
	want := map[string]bool{}
	if !ops.Set {
		for _, op := range crudOps() {
			want[op] = true
		}
	}
	for _, v := range ops.V {
		switch op := string(v.V); {
		case !v.OK:
		case !slices.Contains(crudOps(), op):
			l.addf(v.at, "unknown CRUD operation %q (want get, list, create, update or delete)", op)
		case want[op]:
			l.addf(v.at, "%s is listed twice", op)
		default:
			want[op] = true
		}
	}
	if r.Singular == "" {
		return nil // reported with the singular
	}
	one, many := upperName(r.Singular), upperName(r.Name)
	route := func(form Form, method, action string) *Route {
		return l.route(def, form, "", method, action, r.Line)
	}
	var routes []*Route
	for _, op := range crudOps() {
		if !want[op] {
			continue
		}
		switch op {
		case "get":
			routes = append(routes, route(FormItem, "GET", "GET_"+one))
		case "list":
			rt := route(FormCollection, "GET", "LIST_"+many)
			rt.List = true
			routes = append(routes, rt)
		case "create":
			rt := route(FormCollection, "POST", "CREATE_"+one)
			rt.Create = true
			routes = append(routes, rt)
		case "update":
			routes = append(routes, route(FormItem, "PUT", "UPDATE_"+one), route(FormItem, "PATCH", "UPDATE_"+one))
		case "delete":
			routes = append(routes, route(FormItem, "DELETE", "DELETE_"+one))
		}
	}
	for _, rt := range routes {
		if !isAction(rt.Action) {
			l.addf(where, "CRUD action %q is not UPPER_SNAKE_CASE; set singular, or rename the resource", rt.Action)
			return nil
		}
	}
	return routes
}

// timeout is a route's deadline: its action's or resource's, else its
// service's, else http.default_timeout.
func (l routing) timeout(own time.Duration, service string) time.Duration {
	switch s := l.services[service]; {
	case own > 0:
		return own
	case s != nil && s.Timeout > 0:
		return s.Timeout
	}
	return l.defaultTimeout
}

// serviceRef checks the name of a service that the configuration
// defines; "" when it is not set or not defined.
func (l routing) serviceRef(v val[string]) string {
	if !v.Set || !v.OK {
		return ""
	}
	if l.services[v.V] == nil {
		l.addf(v.at, "unknown service %q", v.V)
		return ""
	}
	return v.V
}

// methods are the HTTP methods a route may take.
func methods() []string { return []string{"GET", "POST", "PUT", "PATCH", "DELETE"} }

// action checks one custom action and returns a route per method. The
// action's own cache_ttl applies to every method it takes (a POST search
// may be cached); the resource's only to GET.
func (l routing) action(y yamlAction, def settings) []*Route {
	if !y.At.found() {
		return nil // not a mapping: reported
	}
	form := FormItemAction
	switch on := y.On.or("item"); {
	case on == "collection":
		form = FormCollectionAction
	case on != "item" && y.On.OK:
		l.addf(y.On.at, `expected "item" or "collection", got %q`, on)
	}
	seg := y.Name.V
	switch {
	case !y.Name.Set:
		l.addf(y.At, "name is required")
	case seg == "":
	case form == FormCollectionAction && seg == "openapi.json":
		l.addf(y.Name.at, `"openapi.json" is reserved and cannot name a collection action`)
	case !isSegment(seg):
		l.addf(y.Name.at, "action name must be %s, got %q", segmentRule, seg)
	}
	ms := l.routeMethods(y)

	action := y.Action.V
	if !y.Action.Set {
		action = upperName(seg)
	}
	if y.Action.Set && action != "" && !isAction(action) {
		l.addf(y.Action.at, "action %q is not UPPER_SNAKE_CASE", action)
	} else if !y.Action.Set && isSegment(seg) && !isAction(action) {
		l.addf(y.Name.at, "the action %q made from the name is not UPPER_SNAKE_CASE; set action", action)
	}
	own := def
	if y.Service.Set {
		own.service = l.serviceRef(y.Service)
	}
	own.access = y.Access.or(def.access)
	own.caching = l.caching(&y.yamlRoute, def.caching)
	if y.CacheTTL.Set {
		own.cacheTTL, own.ownTTL = y.CacheTTL.V, true
	}
	if y.Timeout.Set {
		own.timeout = time.Duration(y.Timeout.V)
	}
	if m := l.idempotency(y.Idempotency); m != "" {
		own.idempotency, own.ownIdempotency = m, true
	}
	steps := pipelines{l.problems, l.serviceRef}.pipeline(y.Pipeline, own.service, form == FormItemAction)
	result := l.result(y, steps)
	routes := make([]*Route, 0, len(ms))
	for _, m := range ms {
		rt := l.route(own, form, seg, m, action, y.At.line())
		rt.Pipeline, rt.Result = steps, result
		routes = append(routes, rt)
	}
	return routes
}

// routeMethods checks an action's method or methods; the default is POST.
func (l routing) routeMethods(y yamlAction) []string {
	var ms []string
	check := func(m string, where at) {
		if !slices.Contains(methods(), m) {
			l.addf(where, "unknown method %q (want GET, POST, PUT, PATCH or DELETE)", m)
		} else {
			ms = append(ms, m)
		}
	}
	switch {
	case y.Method.Set && y.Methods.Set:
		l.addf(y.At, "set method or methods, not both")
	case y.Method.Set:
		if y.Method.OK {
			check(string(y.Method.V), y.Method.at)
		}
	case y.Methods.Set:
		for _, m := range y.Methods.V {
			if m.OK {
				check(string(m.V), m.at)
			}
		}
		if y.Methods.OK && len(y.Methods.V) == 0 {
			l.addf(y.Methods.at, "lists no methods")
		}
	default:
		ms = append(ms, "POST")
	}
	return ms
}

// result checks the step whose result answers a pipeline route; the
// default is the last step, which then may not be a parallel group.
func (l routing) result(y yamlAction, steps []*Step) string {
	r := y.Result
	switch {
	case !r.Set && len(steps) == 0:
	case !r.Set && steps[len(steps)-1].Parallel != nil:
		l.addLine(steps[len(steps)-1].Line, join(l.paths[y.At.n], "result"), "the pipeline ends with a parallel group; set result to name the answering step")
	case !r.Set:
		return steps[len(steps)-1].Name
	case !r.OK:
	case !y.Pipeline.Set:
		l.addf(r.at, "result needs a pipeline")
	case !slices.Contains(stepNames(steps), r.V):
		l.addf(r.at, "no pipeline step named %q", r.V)
	default:
		return r.V
	}
	return ""
}

// caching checks the cache, coalesce and visibility keys of a resource or
// action over the inherited settings.
func (l routing) caching(y *yamlRoute, c Caching) Caching {
	if y.Cache.Set {
		c.NoCache = !y.Cache.V
	}
	if y.Coalesce.Set {
		c.NoCoalesce = !y.Coalesce.V
	}
	switch vis := y.Visibility; {
	case !vis.Set || !vis.OK:
	case vis.V == VisibilityPublic, vis.V == VisibilityPerCaller:
		c.Visibility = string(vis.V)
	default:
		l.addf(vis.at, `expected "public" or "per-caller", got %q`, vis.V)
	}
	return c
}

// idempotency checks a route's Idempotency-Key mode; "" when it sets none.
func (l routing) idempotency(v val[text]) Idempotency {
	if !v.Set || !v.OK {
		return ""
	}
	switch m := Idempotency(v.V); m {
	case IdempotencyRequired, IdempotencyOptional, IdempotencyOff:
		return m
	}
	l.addf(v.at, `expected "required", "optional" or "off", got %q`, v.V)
	return ""
}
