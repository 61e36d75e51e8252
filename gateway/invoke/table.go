package invoke

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/idempotency"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/services/socket/caller"
	"google.golang.org/grpc/connectivity"
)

// Table is one configuration in force: routes, authenticator and a client
// per service. Requests hold a reference while they run, so a reload can
// swap tables and close what no table uses any more only after the
// requests using it are done.
type Table struct {
	cfg     *config.Config
	auth    *auth.Authenticator
	clients map[string]*caller.Client // by service name
	logger  *slog.Logger
	idem    idempotency.Store // Idempotency-Key leases and answers

	refs    atomic.Int64
	retired atomic.Bool
	idle    chan struct{} // closed once retired and unreferenced
	once    sync.Once

	catalogues sync.Map                    // version → catalogue, for the OpenAPI documents
	actions    sync.Map                    // version → []actionroute.Route, for the action form
	routes     map[routeKey]*observe.Route // what observers know of each route; read-only
}

// routeKey names a route of one table: a version may share its routes
// with the versions that extend it.
type routeKey struct {
	version  *config.Version
	resource *config.Resource
	route    *config.Route
}

// routesFor makes what the observers know of every route of a
// configuration.
func routesFor(obs observe.Observers, cfg *config.Config) map[routeKey]*observe.Route {
	out := map[routeKey]*observe.Route{}
	for _, v := range cfg.Versions {
		for _, res := range v.Resources {
			for _, rt := range res.Routes {
				ri := observe.Route{Version: v.Name, Template: RouteTemplate(v.Name, res.Name, rt), Method: rt.Method, Actions: routeActions(rt)}
				if len(rt.Pipeline) == 0 {
					ri.Service, ri.Action = rt.Service, rt.Action
				}
				out[routeKey{v, res, rt}] = obs.NewRoute(ri)
			}
		}
	}
	return out
}

// routeActions names what a route runs: service.ACTION, comma-separated
// for a pipeline's steps.
func routeActions(rt *config.Route) string {
	if len(rt.Pipeline) == 0 {
		return rt.Service + "." + rt.Action
	}
	s := ""
	for _, st := range rt.Pipeline {
		for _, x := range append([]*config.Step{st}, st.Parallel...) {
			if x.Action != "" {
				if s != "" {
					s += ","
				}
				s += x.Service + "." + x.Action
			}
		}
	}
	return s
}

// routeInfo returns what the observers know of a resolved route.
func (t *Table) routeInfo(r resolved) *observe.Route {
	return t.routes[routeKey{r.version, r.resource, r.route}]
}

// Release drops the reference Acquire took.
func (t *Table) Release() {
	if t.refs.Add(-1) == 0 && t.retired.Load() {
		t.once.Do(func() { close(t.idle) })
	}
}

// retire marks a table replaced; idle closes when its last request ends.
func (t *Table) retire() {
	t.retired.Store(true)
	if t.refs.Load() == 0 {
		t.once.Do(func() { close(t.idle) })
	}
}

// Config is the table's configuration; read-only.
func (t *Table) Config() *config.Config { return t.cfg }

// Ready reports whether every service of the table has a ready stream.
func (t *Table) Ready() bool {
	for _, c := range t.clients {
		if c.State() != connectivity.Ready {
			return false
		}
	}
	return true
}
