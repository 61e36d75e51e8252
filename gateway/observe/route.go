package observe

// Route is what observers know of a route, made once per table by
// Observers.NewRoute: plain names the core gives, and what each observer
// keeps for the route.
type Route struct {
	Version  string // the API version, e.g. v1
	Template string // the path template, e.g. /v1/users/{id}
	Method   string
	Name     string // method and template, e.g. "GET /v1/users/{id}"
	Actions  string // service.ACTION, comma-separated for a pipeline
	Service  string // a single action's service and action; empty for a pipeline
	Action   string

	state []any // what each observer keeps for the route, by its index
	// fields are the access line's route and actions fields as each
	// LogFormat writes them, encoded once by NewRoute; nil for a Route
	// made otherwise.
	fields *[2][]byte
}

// NewRoute completes ri (its Name, unless set) and asks each observer
// what it keeps for the route.
func (o Observers) NewRoute(ri Route) *Route {
	r := &ri
	if r.Name == "" {
		r.Name = r.Method + " " + r.Template
	}
	r.fields = &[2][]byte{}
	for _, f := range []LogFormat{LogText, LogJSON} {
		r.fields[f] = appendRouteFields(nil, f, r.Name, r.Actions)
	}
	r.state = make([]any, len(o))
	for i, x := range o {
		r.state[i] = x.Route(r)
	}
	return r
}

// stateOf returns what the observer at index i keeps for r's route; nil
// when r has no route.
func stateOf(r *Record, i int) any {
	if r.Route == nil || i >= len(r.Route.state) {
		return nil
	}
	return r.Route.state[i]
}
