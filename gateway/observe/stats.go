package observe

import (
	"sync"
	"sync/atomic"

	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
)

// routeStats count what the cache and the coalescer did for one route.
type routeStats struct {
	hits, misses, coalesced, invalidations atomic.Uint64
}

// Stats is the observer that keeps the route stats ListRoutes shows, by
// route name (method and path template), so they live across reloads.
type Stats struct {
	NoObserver
	m     sync.Map // string → *routeStats
	index int      // the observer's index in the Observers
}

var _ Observer = (*Stats)(nil)

// NewStats returns an observer with no stats yet.
func NewStats() *Stats { return &Stats{} }

func (s *Stats) setIndex(i int) { s.index = i }

func (s *Stats) named(name string) *routeStats {
	if v, ok := s.m.Load(name); ok {
		return v.(*routeStats)
	}
	v, _ := s.m.LoadOrStore(name, &routeStats{})
	return v.(*routeStats)
}

// Of returns the stats of the route named name ("GET /v1/users/{id}").
func (s *Stats) Of(name string) *gatewayv1.RouteStats {
	st := s.named(name)
	return &gatewayv1.RouteStats{Hits: st.hits.Load(), Misses: st.misses.Load(), Coalesced: st.coalesced.Load(), Invalidations: st.invalidations.Load()}
}

// Route finds a route's stats when its table is built.
func (s *Stats) Route(ri *Route) any { return s.named(ri.Name) }

// Cached counts a cache outcome: a miss only where reads are cached.
func (s *Stats) Cached(r *Record, e CacheEvent) {
	st, _ := stateOf(r, s.index).(*routeStats)
	switch {
	case st == nil:
	case e.Invalidation:
		st.invalidations.Add(1)
	case e.Read == CacheHit:
		st.hits.Add(1)
	case e.Read == CacheCoalesced:
		st.coalesced.Add(1)
	case e.Read == CacheMiss && e.Cacheable:
		st.misses.Add(1)
	}
}
