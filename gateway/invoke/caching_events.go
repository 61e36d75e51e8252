package invoke

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/streamgate/streamgate/services/socket/caller"
)

// invalidationTimeout bounds one event's invalidation (a Redis round trip
// when the generations are shared).
const invalidationTimeout = 5 * time.Second

// watchForCache subscribes to every event of a service client's services,
// so that a change made without the gateway (another gateway, a direct
// call, a background job) drops the cached reads it makes stale. The
// subscription ends when the client closes.
func (v *invalidator) watchForCache(c *caller.Client) {
	if v.cache == nil {
		return
	}
	if _, err := c.Subscribe(context.Background(), "*", func(e caller.Event) { v.invalidateEvent(c, e) }); err != nil {
		v.logger.Error("gateway: cannot subscribe to a service's events; cached reads may be stale until they expire", "err", err)
	}
}

// invalidateEvent drops what an event from a service behind c makes
// stale: the topic "{resource}/{id}" names the item and collection of the
// resource of that name that the service owns in any version, as a write
// of it through the gateway would. A gap (events may be missing) drops
// everything of the service. Bumping the tags' generations also changes
// the read epochs, so reads started before the event share no run with
// reads started after it.
func (v *invalidator) invalidateEvent(c *caller.Client, e caller.Event) {
	t := v.acquire()
	defer t.Release()
	var tags []string
	for service, sc := range t.clients {
		if sc == c {
			tags = append(tags, eventTags(t, service, e.Topic, e.Gap)...)
		}
	}
	v.invalidateEventTags(tags)
}

// invalidateStored drops what an event a service stored in JetStream
// makes stale (the gateway's events: block), as invalidateEvent does for
// one from a service's client: publisher and topic are the event's
// Streamgate-Service and Streamgate-Topic headers. The publisher is the
// name the service serves under: a service on NATS's target, another's
// own name.
func (v *invalidator) invalidateStored(publisher, topic string) {
	if v.cache == nil || publisher == "" || topic == "" {
		return
	}
	t := v.acquire()
	defer t.Release()
	var tags []string
	for name, svc := range t.cfg.Services {
		if publisherOf(svc) == publisher {
			tags = append(tags, eventTags(t, name, topic, false)...)
		}
	}
	v.invalidateEventTags(tags)
}

// eventTags are the tags an event of service on topic makes stale: the
// item and collection of the resource the topic names ("{resource}/{id}")
// that the service owns in any version; every tag of the service after a
// gap.
func eventTags(t *Table, service, topic string, gap bool) []string {
	if gap {
		return []string{serviceTag(service)}
	}
	resource, id, _ := strings.Cut(topic, "/")
	var tags []string
	for _, ver := range t.cfg.Versions {
		if r := ver.Resources[resource]; r != nil && r.Service == service {
			tags = append(tags, collectionTag(service, resource))
			if id != "" {
				tags = append(tags, itemTag(service, resource, id))
			}
		}
	}
	return tags
}

// invalidateEventTags drops the cached reads of tags an event made
// stale.
func (v *invalidator) invalidateEventTags(tags []string) {
	slices.Sort(tags)
	tags = slices.Compact(tags)
	if len(tags) == 0 {
		return
	}
	v.invalidateTags(tags, "from an event")
	if fn := v.eventInvalidated; fn != nil {
		fn(tags)
	}
}

// invalidateMoved drops the cached reads of every service whose client a
// reload replaced: the events between the old client's subscription and
// the new one's may be lost.
func (v *invalidator) invalidateMoved(old, t *Table) {
	if v.cache == nil {
		return
	}
	var tags []string
	for service, c := range t.clients {
		if prev := old.clients[service]; prev != nil && prev != c {
			tags = append(tags, serviceTag(service))
		}
	}
	if len(tags) > 0 {
		v.invalidateTags(tags, "after a reload")
	}
}

// invalidateTags drops the cached reads of tags, logging a failure (when
// says what caused it).
func (v *invalidator) invalidateTags(tags []string, when string) {
	ctx, cancel := context.WithTimeout(context.Background(), invalidationTimeout)
	defer cancel()
	if err := v.cache.Invalidate(ctx, tags); err != nil {
		v.logger.Error("gateway: cache invalidation "+when+" failed; cached reads may be stale until they expire", "err", err, "tags", tags)
	}
}
