package config

import (
	"slices"
	"time"

	"gopkg.in/yaml.v3"
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

// routeKey is what two routes of a resource may not share.
type routeKey struct {
	form    Form
	segment string
	method  string
}

// routeTable collects a resource's routes, refusing a second route for
// the same method on the same path form.
type routeTable struct {
	l     *loader
	r     *Resource
	lines map[routeKey]int // the line of each route added
}

func (t *routeTable) add(rt *Route, path string) {
	key := routeKey{rt.Form, rt.Segment, rt.Method}
	if line, dup := t.lines[key]; dup {
		t.l.addf(rt.Line, path, "%s %s is defined twice (first at line %d)", rt.Method, routePath(t.r.Name, rt), line)
		return
	}
	t.lines[key] = rt.Line
	t.r.Routes = append(t.r.Routes, rt)
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

// resource reads one resource of a version and builds its routes: the
// CRUD convention, then the custom actions.
func (l *loader) resource(k, n *yaml.Node, path string) *Resource {
	r := &Resource{Name: k.Value, Line: k.Line}
	if !isSegment(r.Name) {
		l.addf(k.Line, path, "resource name must be %s", segmentRule)
	}
	var f map[string]*yaml.Node
	servicePath := join(path, "service")
	switch {
	case isNull(n):
		l.addf(k.Line, path, "expected a service name or a mapping")
		return r
	case deref(n).Kind == yaml.ScalarNode:
		f, servicePath = map[string]*yaml.Node{"service": n}, path
	default:
		if f = l.fields(n, path, "service", "singular", "crud", "access", "cache_ttl", "cache", "coalesce", "visibility", "timeout", "idempotency", "actions"); f == nil {
			return r
		}
	}

	var def routeDefaults
	if v := f["service"]; v != nil {
		def.service, _ = l.serviceRef(v, servicePath)
	} else {
		l.addf(k.Line, path, "service is required")
	}
	r.Service = def.service
	r.Singular = singular(r.Name)
	if v := f["singular"]; v != nil {
		r.Singular, _ = l.name(v, join(path, "singular"))
	} else if r.Singular == "" {
		l.addf(k.Line, path, "no singular can be made from %q; set singular", r.Name)
	}
	if v := f["access"]; v != nil {
		def.access = l.access(v, join(path, "access"))
	}
	if v := f["cache_ttl"]; v != nil {
		def.cacheTTL, _ = l.duration(v, join(path, "cache_ttl"), false)
	}
	if v := f["timeout"]; v != nil {
		def.timeout, _ = l.duration(v, join(path, "timeout"), true)
	}
	def.caching = l.caching(f, path, Caching{})
	if v := f["idempotency"]; v != nil {
		def.idempotency = l.idempotency(v, join(path, "idempotency"))
	}

	t := &routeTable{l: l, r: r, lines: map[routeKey]int{}}
	l.crud(f["crud"], path, r, def, t)
	l.items(f["actions"], join(path, "actions"), func(_ int, v *yaml.Node, p string) {
		for _, rt := range l.action(v, p, def) {
			t.add(rt, p)
		}
	})
	return r
}

// crudOps are the CRUD operations in the order their routes are listed.
func crudOps() []string { return []string{"get", "list", "create", "update", "delete"} }

// crud adds the CRUD routes that the resource's crud list names (all when
// it is absent): GET_ONE, LIST_MANY, CREATE_ONE, UPDATE_ONE (PUT and
// PATCH) and DELETE_ONE.
func (l *loader) crud(n *yaml.Node, path string, r *Resource, def routeDefaults, t *routeTable) {
	want := map[string]bool{}
	if n == nil {
		for _, op := range crudOps() {
			want[op] = true
		}
	}
	l.items(n, join(path, "crud"), func(_ int, v *yaml.Node, p string) {
		op, ok := l.str(v, p)
		switch {
		case !ok:
		case !slices.Contains(crudOps(), op):
			l.addf(deref(v).Line, p, "unknown CRUD operation %q (want get, list, create, update or delete)", op)
		case want[op]:
			l.addf(deref(v).Line, p, "%s is listed twice", op)
		default:
			want[op] = true
		}
	})
	if r.Singular == "" {
		return // reported with the singular
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
			return
		}
	}
	for _, rt := range routes {
		t.add(rt, path)
	}
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

// serviceRef reads the name of a service that the configuration defines.
func (l *loader) serviceRef(n *yaml.Node, path string) (string, bool) {
	s, ok := l.name(n, path)
	if !ok {
		return "", false
	}
	if l.cfg.Services[s] == nil {
		l.addf(deref(n).Line, path, "unknown service %q", s)
		return "", false
	}
	return s, true
}

// access reads who may call: "anonymous", "authenticated" or
// {roles: [..]}.
func (l *loader) access(n *yaml.Node, path string) Access {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "anonymous":
			return Access{Anonymous: true}
		case "authenticated":
			return Access{}
		}
		l.addf(n.Line, path, `expected "anonymous", "authenticated" or {roles: [...]}, got %s`, describe(n))
		return Access{}
	}
	f := l.fields(n, path, "roles")
	if f == nil {
		return Access{}
	}
	roles := l.names(f["roles"], join(path, "roles"))
	if v := deref(f["roles"]); v == nil || (v.Kind == yaml.SequenceNode && len(v.Content) == 0) {
		l.addf(n.Line, path, "roles must list at least one role")
	}
	return Access{Roles: roles}
}

// methods are the HTTP methods a route may take.
func methods() []string { return []string{"GET", "POST", "PUT", "PATCH", "DELETE"} }

// action reads one custom action and returns a route per method. The
// action's own cache_ttl applies to every method it takes (a POST search
// may be cached); the resource's only to GET.
func (l *loader) action(n *yaml.Node, path string, def routeDefaults) []*Route {
	n = deref(n)
	f := l.fields(n, path, "name", "method", "methods", "on", "action", "service", "access", "cache_ttl", "cache", "coalesce", "visibility", "timeout", "idempotency", "pipeline", "result")
	if f == nil {
		return nil
	}
	form := FormItemAction
	if v := f["on"]; v != nil {
		switch on, _ := l.str(v, join(path, "on")); on {
		case "item":
		case "collection":
			form = FormCollectionAction
		default:
			l.addf(deref(v).Line, join(path, "on"), `expected "item" or "collection", got %s`, describe(v))
		}
	}
	var name string
	if v := f["name"]; v != nil {
		name, _ = l.name(v, join(path, "name"))
		switch {
		case name == "":
		case form == FormCollectionAction && name == "openapi.json":
			l.addf(deref(v).Line, join(path, "name"), `"openapi.json" is reserved and cannot name a collection action`)
		case !isSegment(name):
			l.addf(deref(v).Line, join(path, "name"), "action name must be %s, got %q", segmentRule, name)
		}
	} else {
		l.addf(n.Line, path, "name is required")
	}
	ms := l.routeMethods(f["method"], f["methods"], path, n.Line)

	action := upperName(name)
	if v := f["action"]; v != nil {
		if action, _ = l.name(v, join(path, "action")); action != "" && !isAction(action) {
			l.addf(deref(v).Line, join(path, "action"), "action %q is not UPPER_SNAKE_CASE", action)
		}
	} else if isSegment(name) && !isAction(action) {
		l.addf(deref(f["name"]).Line, join(path, "name"), "the action %q made from the name is not UPPER_SNAKE_CASE; set action", action)
	}
	service := def.service
	if v := f["service"]; v != nil {
		service, _ = l.serviceRef(v, join(path, "service"))
	}
	access := def.access
	if v := f["access"]; v != nil {
		access = l.access(v, join(path, "access"))
	}
	var cacheTTL time.Duration
	ownTTL := f["cache_ttl"] != nil
	if ownTTL {
		cacheTTL, _ = l.duration(f["cache_ttl"], join(path, "cache_ttl"), false)
	}
	var own time.Duration
	if v := f["timeout"]; v != nil {
		own, _ = l.duration(v, join(path, "timeout"), true)
	}
	caching := l.caching(f, path, def.caching)
	var idem Idempotency
	if v := f["idempotency"]; v != nil {
		idem = l.idempotency(v, join(path, "idempotency"))
	}
	var steps []*Step
	if v := f["pipeline"]; v != nil {
		steps = l.pipeline(v, join(path, "pipeline"), service, form == FormItemAction)
	}
	result := l.result(f["result"], f["pipeline"], join(path, "result"), steps)

	routes := make([]*Route, 0, len(ms))
	for _, m := range ms {
		ttl := cacheTTL
		if !ownTTL {
			ttl = def.cacheFor(m)
		}
		mode := idem
		if mode == "" {
			mode = def.idempotencyFor(m)
		}
		routes = append(routes, &Route{
			Form: form, Segment: name, Method: m,
			Service: service, Action: action,
			Pipeline: steps, Result: result,
			Access: access, CacheTTL: ttl, Caching: caching,
			Timeout:     l.timeout(own, def.timeout, service),
			Idempotency: mode,
			Line:        n.Line,
		})
	}
	return routes
}

// routeMethods reads an action's method or methods; the default is POST.
func (l *loader) routeMethods(one, many *yaml.Node, path string, line int) []string {
	var ms []string
	switch {
	case one != nil && many != nil:
		l.addf(line, path, "set method or methods, not both")
		return nil
	case one != nil:
		p := join(path, "method")
		if m, ok := l.str(one, p); ok && l.method(m, deref(one).Line, p) {
			ms = append(ms, m)
		}
	case many != nil:
		l.items(many, join(path, "methods"), func(_ int, v *yaml.Node, p string) {
			if m, ok := l.str(v, p); ok && l.method(m, deref(v).Line, p) {
				ms = append(ms, m)
			}
		})
		if len(deref(many).Content) == 0 {
			l.addf(deref(many).Line, join(path, "methods"), "lists no methods")
		}
	default:
		ms = append(ms, "POST")
	}
	return ms
}

// method checks that m is a method routes take.
func (l *loader) method(m string, line int, path string) bool {
	if !slices.Contains(methods(), m) {
		l.addf(line, path, "unknown method %q (want GET, POST, PUT, PATCH or DELETE)", m)
		return false
	}
	return true
}

// result reads the step whose result answers a pipeline route; the
// default is the last step, which then may not be a parallel group.
func (l *loader) result(n, pipeline *yaml.Node, path string, steps []*Step) string {
	if n == nil {
		if len(steps) == 0 {
			return ""
		}
		last := steps[len(steps)-1]
		if last.Parallel != nil {
			l.addf(last.Line, path, "the pipeline ends with a parallel group; set result to name the answering step")
			return ""
		}
		return last.Name
	}
	name, ok := l.name(n, path)
	switch {
	case !ok:
	case pipeline == nil:
		l.addf(deref(n).Line, path, "result needs a pipeline")
	case !slices.Contains(stepNames(steps), name):
		l.addf(deref(n).Line, path, "no pipeline step named %q", name)
	default:
		return name
	}
	return ""
}

// caching reads the cache, coalesce and visibility keys of a resource or
// action over the inherited settings.
func (l *loader) caching(f map[string]*yaml.Node, path string, c Caching) Caching {
	if v := f["cache"]; v != nil {
		on, _ := l.boolean(v, join(path, "cache"))
		c.NoCache = !on
	}
	if v := f["coalesce"]; v != nil {
		on, _ := l.boolean(v, join(path, "coalesce"))
		c.NoCoalesce = !on
	}
	if v := f["visibility"]; v != nil {
		switch vis, _ := l.str(v, join(path, "visibility")); vis {
		case VisibilityPublic, VisibilityPerCaller:
			c.Visibility = vis
		default:
			l.addf(deref(v).Line, join(path, "visibility"), `expected "public" or "per-caller", got %s`, describe(v))
		}
	}
	return c
}

// idempotency reads a route's Idempotency-Key mode.
func (l *loader) idempotency(n *yaml.Node, path string) Idempotency {
	m, ok := l.str(n, path)
	if !ok {
		return ""
	}
	switch Idempotency(m) {
	case IdempotencyRequired, IdempotencyOptional, IdempotencyOff:
		return Idempotency(m)
	}
	l.addf(deref(n).Line, path, `expected "required", "optional" or "off", got %s`, describe(n))
	return ""
}
