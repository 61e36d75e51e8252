package invoke

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/streamgate/streamgate/gateway/cache"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/observe"
)

// Cache tags name what a cached read depends on: one item of a resource,
// the resource's collection, or a whole service (for writes inside
// pipelines, whose resource the gateway cannot name).
func itemTag(service, resource, id string) string { return service + "|" + resource + "|" + id }
func collectionTag(service, resource string) string {
	return service + "|" + resource + "|*"
}
func serviceTag(service string) string { return service + "|*|*" }

// readTags are the tags of a read of a resource's item (id set) or
// collection.
func readTags(service, resource, id string) []string {
	if id != "" {
		return []string{itemTag(service, resource, id), serviceTag(service)}
	}
	return []string{collectionTag(service, resource), serviceTag(service)}
}

// invalidator drops cached reads: after a write through the gateway, on
// a service's events, and after a reload that moved a service.
type invalidator struct {
	cache            *cache.Cache // nil when caching is off
	logger           *slog.Logger
	eventInvalidated func(tags []string) // tests: told each event's invalidation
	acquire          func() *Table       // the table in force, for events
}

// invalidate drops the cached reads a successful write may have changed:
// the item it names and its collection (UPDATE_USER 1 drops GET_USER 1
// and LIST_USERS), and everything of the services its pipeline wrote to.
func (v *invalidator) invalidate(ctx context.Context, in *Invocation, services []string, result json.RawMessage) {
	if v.cache == nil {
		return
	}
	route := in.route
	tags := []string{collectionTag(route.Service, in.resource.Name)}
	if in.id != "" {
		tags = append(tags, itemTag(route.Service, in.resource.Name, in.id))
	}
	if route.Create {
		// A cached NOT_FOUND of the created id must go too.
		if id := createdID(result); id != "" {
			tags = append(tags, itemTag(route.Service, in.resource.Name, id))
		}
	}
	for _, s := range services {
		tags = append(tags, serviceTag(s))
	}
	in.Record.Cached(observe.CacheEvent{Invalidation: true})
	// With Redis, this waits at most its call deadline (nothing while it
	// is marked down); a bump that fails is retried in the background,
	// and until it lands this gateway serves no cached read.
	if err := v.cache.Invalidate(context.WithoutCancel(ctx), tags); err != nil {
		v.logger.Warn("gateway: cache invalidation failed; retrying in the background", "err", err, "tags", tags)
	}
}

// pipelineWrites lists the services a pipeline (and its undo steps) may
// send writes to.
func pipelineWrites(t *Table, route *config.Route) []string {
	var out []string
	for _, st := range route.Pipeline {
		for _, s := range append([]*config.Step{st}, st.Parallel...) {
			if s.Undo != nil {
				out = append(out, s.Undo.Service)
			}
			if s.Action == "" {
				continue
			}
			c := t.clients[s.Service]
			if info, ok := c.Action(s.Action); !ok || !info.Read {
				out = append(out, s.Service)
			}
		}
	}
	return out
}
