package gateway

import (
	"context"

	"github.com/streamgate/streamgate/gateway/hub"
	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/services/socket"
)

// SetCachedETag replaces the ETag of the cached answer of a public read
// without a body (GET_NEWS 1 in v1 of service users); it reports whether
// the cache had the answer. Tests use it to tell a stored ETag from one
// computed again.
func SetCachedETag(g *Gateway, service, version, action, id, etag string) bool {
	key := service + "\x00" + coalesce.Key(action, id, nil, version, "", "") // as gateway/invoke's readKey encodes it
	e, ok := g.cache.Get(context.Background(), key)
	if ok {
		e.ETag = etag
	}
	return ok
}

// Flights returns the Group a gateway shares identical reads through,
// for tests that wait until requests joined a flight.
func Flights(g *Gateway) *coalesce.Group { return &g.flights }

// TopicEvent is what WatchTopic delivers.
type TopicEvent = hub.Event

// WatchTopic is the core's Watch, for tests.
func WatchTopic(ctx context.Context, g *Gateway, version, topic string, p socket.Principal, deliver func(TopicEvent)) (stop func(), err error) {
	stop, _, err = g.core.Watch(ctx, version, topic, eventlog.Position{}, p, deliver)
	return stop, err
}

// WatchTopicSeq is WatchTopic that also returns the topic's seq when the
// watch began.
func WatchTopicSeq(ctx context.Context, g *Gateway, version, topic string, p socket.Principal, deliver func(TopicEvent)) (stop func(), seq uint64, err error) {
	stop, start, err := g.core.Watch(ctx, version, topic, eventlog.Position{}, p, deliver)
	return stop, start.Seq, err
}

// Upstreams returns how many upstream event subscriptions the hub holds.
func Upstreams(g *Gateway) int {
	return g.core.Upstreams()
}

// WithEventInvalidated calls fn with the tags each event from a service
// invalidated, once they are invalidated.
func WithEventInvalidated(fn func(tags []string)) Option {
	return func(o *options) { o.eventInvalidated = fn }
}

// Health is the core's health, for tests.
func Health(ctx context.Context, g *Gateway) invoke.Health { return g.core.Health(ctx) }
