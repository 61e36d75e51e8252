package gateway

import (
	"sync"
	"sync/atomic"

	"github.com/streamgate/streamgate/gateway/config"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
)

// routeStats count what the cache and the coalescer did for one route.
type routeStats struct {
	hits, misses, coalesced, invalidations atomic.Uint64
}

// statsTable is the observer that keeps the route stats ListRoutes shows,
// by method and path template, so they live across reloads.
type statsTable struct {
	noObserver
	m     sync.Map // string → *routeStats
	index int      // the observer's index in the gateway's observers
}

var _ observer = (*statsTable)(nil)

func (s *statsTable) of(route *config.Route, version, resource string) *routeStats {
	return s.named(route.Method + " " + routePath(version, resource, route))
}

func (s *statsTable) named(name string) *routeStats {
	if v, ok := s.m.Load(name); ok {
		return v.(*routeStats)
	}
	v, _ := s.m.LoadOrStore(name, &routeStats{})
	return v.(*routeStats)
}

// route finds a route's stats when its table is built.
func (s *statsTable) route(ri *routeInfo) any { return s.named(ri.name) }

// cached counts a cache outcome: a miss only where reads are cached.
func (s *statsTable) cached(r *request, e cacheEvent) {
	st, _ := r.route.state[s.index].(*routeStats)
	switch {
	case st == nil:
	case e.invalidation:
		st.invalidations.Add(1)
	case e.read == outcomeHit:
		st.hits.Add(1)
	case e.read == outcomeCoalesced:
		st.coalesced.Add(1)
	case e.read == outcomeMiss && e.cacheable:
		st.misses.Add(1)
	}
}

func (s *routeStats) proto() *gatewayv1.RouteStats {
	return &gatewayv1.RouteStats{Hits: s.hits.Load(), Misses: s.misses.Load(), Coalesced: s.coalesced.Load(), Invalidations: s.invalidations.Load()}
}
