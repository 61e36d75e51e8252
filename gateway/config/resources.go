package config

import (
	"slices"
	"time"
)

// routeDefaults are what a resource gives its routes that set nothing.
type routeDefaults struct {
	service  string
	access   Access
	caching  Caching
	cacheTTL time.Duration // for GET routes only: writes are never cached
	timeout  time.Duration // the resource's own timeout; 0 when it sets none
	// idempotency is the resource's mode for its write routes; "" when it
	// sets none.
	idempotency Idempotency
}

// idempotencyFor is the mode of a route taking method that sets none: the
// resource's for writes, else optional for writes and off for GET.
func (d routeDefaults) idempotencyFor(method string) Idempotency {
	switch {
	case method == "GET":
		return IdempotencyOff
	case d.idempotency != "":
		return d.idempotency
	}
	return IdempotencyOptional
}

// cacheFor is the resource's cache TTL for a route taking method.
func (d routeDefaults) cacheFor(method string) time.Duration {
	if method != "GET" {
		return 0
	}
	return d.cacheTTL
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
func (l *loader) resource(e entry[yamlResource]) *Resource {
	r := &Resource{Name: e.Key, Line: e.Line}
	y := &e.V
	if !isSegment(r.Name) {
		l.addf(e.Line, e.Path, "resource name must be %s", segmentRule)
	}
	switch {
	case e.Null:
		l.addf(e.Line, e.Path, "expected a service name or a mapping")
		return r
	case y.At.Line == 0:
		return r // not a mapping: reported
	case !y.Service.Set:
		l.addf(e.Line, e.Path, "service is required")
	}
	def := routeDefaults{
		service:     l.serviceRef(y.Service),
		access:      y.Access.V,
		cacheTTL:    y.CacheTTL.V,
		timeout:     time.Duration(y.Timeout.V),
		caching:     l.caching(&y.yamlRoute, Caching{}),
		idempotency: l.idempotency(y.Idempotency),
	}
	r.Service = def.service
	r.Singular = y.Singular.or(singular(r.Name))
	if !y.Singular.Set && r.Singular == "" {
		l.addf(e.Line, e.Path, "no singular can be made from %q; set singular", r.Name)
	}
	// A method on a path form has one route.
	type routeKey struct {
		form            Form
		segment, method string
	}
	lines := map[routeKey]int{} // the line of each route added
	add := func(rt *Route, path string) {
		key := routeKey{rt.Form, rt.Segment, rt.Method}
		if line, dup := lines[key]; dup {
			l.addf(rt.Line, path, "%s %s is defined twice (first at line %d)", rt.Method, routePath(r.Name, rt), line)
			return
		}
		lines[key] = rt.Line
		r.Routes = append(r.Routes, rt)
	}
	for _, rt := range l.crud(y.CRUD, e.Path, r, def) {
		add(rt, e.Path)
	}
	for _, a := range y.Actions {
		for _, rt := range l.action(a, def) {
			add(rt, a.At.Path)
		}
	}
	return r
}

// crudOps are the CRUD operations in the order their routes are listed.
func crudOps() []string { return []string{"get", "list", "create", "update", "delete"} }

// crud returns the CRUD routes that the resource's crud list names (all when
// it is absent): GET_ONE, LIST_MANY, CREATE_ONE, UPDATE_ONE (PUT and
// PATCH) and DELETE_ONE.
func (l *loader) crud(ops val[[]val[text]], path string, r *Resource, def routeDefaults) []*Route {
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
			l.addf(v.Line, v.Path, "unknown CRUD operation %q (want get, list, create, update or delete)", op)
		case want[op]:
			l.addf(v.Line, v.Path, "%s is listed twice", op)
		default:
			want[op] = true
		}
	}
	if r.Singular == "" {
		return nil // reported with the singular
	}
	one, many := upperName(r.Singular), upperName(r.Name)
	route := func(form Form, method, action string) *Route {
		return &Route{
			Form: form, Method: method,
			Service: def.service, Action: action,
			Access: def.access, CacheTTL: def.cacheFor(method), Caching: def.caching,
			Timeout:     l.timeout(0, def.timeout, def.service),
			Idempotency: def.idempotencyFor(method),
			Line:        r.Line,
		}
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
			l.addf(r.Line, path, "CRUD action %q is not UPPER_SNAKE_CASE; set singular, or rename the resource", rt.Action)
			return nil
		}
	}
	return routes
}

// timeout is a route's deadline: its own, else its resource's, else its
// service's, else http.default_timeout.
func (l *loader) timeout(own, resource time.Duration, service string) time.Duration {
	switch s := l.cfg.Services[service]; {
	case own > 0:
		return own
	case resource > 0:
		return resource
	case s != nil && s.Timeout > 0:
		return s.Timeout
	}
	return l.cfg.HTTP.DefaultTimeout
}

// serviceRef checks the name of a service that the configuration
// defines; "" when it is not set or not defined.
func (l *loader) serviceRef(v val[string]) string {
	if !v.Set || !v.OK {
		return ""
	}
	if l.cfg.Services[v.V] == nil {
		l.addf(v.Line, v.Path, "unknown service %q", v.V)
		return ""
	}
	return v.V
}

// methods are the HTTP methods a route may take.
func methods() []string { return []string{"GET", "POST", "PUT", "PATCH", "DELETE"} }

// action checks one custom action and returns a route per method. The
// action's own cache_ttl applies to every method it takes (a POST search
// may be cached); the resource's only to GET.
func (l *loader) action(y yamlAction, def routeDefaults) []*Route {
	if y.At.Line == 0 {
		return nil // not a mapping: reported
	}
	form := FormItemAction
	switch on := y.On.or("item"); {
	case on == "collection":
		form = FormCollectionAction
	case on != "item" && y.On.OK:
		l.addf(y.On.Line, y.On.Path, `expected "item" or "collection", got %q`, on)
	}
	seg := y.Name.V
	switch {
	case !y.Name.Set:
		l.addf(y.At.Line, y.At.Path, "name is required")
	case seg == "":
	case form == FormCollectionAction && seg == "openapi.json":
		l.addf(y.Name.Line, y.Name.Path, `"openapi.json" is reserved and cannot name a collection action`)
	case !isSegment(seg):
		l.addf(y.Name.Line, y.Name.Path, "action name must be %s, got %q", segmentRule, seg)
	}
	ms := l.routeMethods(y)

	action := y.Action.V
	if !y.Action.Set {
		action = upperName(seg)
	}
	if y.Action.Set && action != "" && !isAction(action) {
		l.addf(y.Action.Line, y.Action.Path, "action %q is not UPPER_SNAKE_CASE", action)
	} else if !y.Action.Set && isSegment(seg) && !isAction(action) {
		l.addf(y.Name.Line, y.Name.Path, "the action %q made from the name is not UPPER_SNAKE_CASE; set action", action)
	}
	service := def.service
	if y.Service.Set {
		service = l.serviceRef(y.Service)
	}
	access := y.Access.or(def.access)
	caching := l.caching(&y.yamlRoute, def.caching)
	idem := l.idempotency(y.Idempotency)
	steps := l.pipeline(y.Pipeline, service, form == FormItemAction)
	result := l.result(y, steps)

	routes := make([]*Route, 0, len(ms))
	for _, m := range ms {
		ttl := y.CacheTTL.V
		if !y.CacheTTL.Set {
			ttl = def.cacheFor(m)
		}
		mode := idem
		if mode == "" {
			mode = def.idempotencyFor(m)
		}
		routes = append(routes, &Route{
			Form: form, Segment: seg, Method: m,
			Service: service, Action: action,
			Pipeline: steps, Result: result,
			Access: access, CacheTTL: ttl, Caching: caching,
			Timeout:     l.timeout(time.Duration(y.Timeout.V), def.timeout, service),
			Idempotency: mode,
			Line:        y.At.Line,
		})
	}
	return routes
}

// routeMethods checks an action's method or methods; the default is POST.
func (l *loader) routeMethods(y yamlAction) []string {
	var ms []string
	check := func(m string, line int, path string) {
		if !slices.Contains(methods(), m) {
			l.addf(line, path, "unknown method %q (want GET, POST, PUT, PATCH or DELETE)", m)
		} else {
			ms = append(ms, m)
		}
	}
	switch {
	case y.Method.Set && y.Methods.Set:
		l.addf(y.At.Line, y.At.Path, "set method or methods, not both")
	case y.Method.Set:
		if y.Method.OK {
			check(string(y.Method.V), y.Method.Line, y.Method.Path)
		}
	case y.Methods.Set:
		for _, m := range y.Methods.V {
			if m.OK {
				check(string(m.V), m.Line, m.Path)
			}
		}
		if y.Methods.OK && len(y.Methods.V) == 0 {
			l.addf(y.Methods.Line, y.Methods.Path, "lists no methods")
		}
	default:
		ms = append(ms, "POST")
	}
	return ms
}

// result checks the step whose result answers a pipeline route; the
// default is the last step, which then may not be a parallel group.
func (l *loader) result(y yamlAction, steps []*Step) string {
	r := y.Result
	switch {
	case !r.Set && len(steps) == 0:
	case !r.Set && steps[len(steps)-1].Parallel != nil:
		l.addf(steps[len(steps)-1].Line, join(y.At.Path, "result"), "the pipeline ends with a parallel group; set result to name the answering step")
	case !r.Set:
		return steps[len(steps)-1].Name
	case !r.OK:
	case !y.Pipeline.Set:
		l.addf(r.Line, r.Path, "result needs a pipeline")
	case !slices.Contains(stepNames(steps), r.V):
		l.addf(r.Line, r.Path, "no pipeline step named %q", r.V)
	default:
		return r.V
	}
	return ""
}

// caching checks the cache, coalesce and visibility keys of a resource or
// action over the inherited settings.
func (l *loader) caching(y *yamlRoute, c Caching) Caching {
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
		l.addf(vis.Line, vis.Path, `expected "public" or "per-caller", got %q`, vis.V)
	}
	return c
}

// idempotency checks a route's Idempotency-Key mode; "" when it sets none.
func (l *loader) idempotency(v val[text]) Idempotency {
	if !v.Set || !v.OK {
		return ""
	}
	switch m := Idempotency(v.V); m {
	case IdempotencyRequired, IdempotencyOptional, IdempotencyOff:
		return m
	}
	l.addf(v.Line, v.Path, `expected "required", "optional" or "off", got %q`, v.V)
	return ""
}
