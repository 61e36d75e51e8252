package invoke

import (
	"context"
	"strings"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/hub"
	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// Watch subscribes to one object's topic ("orders/ord_1") of an API
// version for a local client acting for p, and calls deliver with every
// event p may see, in seq order, until stop is called or ctx ends
// (hub.Hub.Watch). The topic's first segment names the version's
// resource whose service publishes it. All watchers of a topic share one
// subscription to the service; it follows the service to a new client
// when a reload changes the service's target or key.
//
// With the configuration's events: block, the events come from the
// event log instead (hub.Log.Watch): every event after from that is still
// held, then the live ones, with the stream's seq and epoch; start says
// whether from was recovered. Without it, the gateway's own seq counts
// the events and nothing is recovered (start.Recovered is false, its
// Seq the topic's seq when the watch began).
//
// The caller checks that p may read the object before watching (the hub
// filters each event by its visibility only). Errors: INVALID_ARGUMENT
// for a topic that is not "{resource}/{id}…" or is a pattern, NOT_FOUND
// for an unknown version or resource, UNAVAILABLE when the gateway is
// closed.
func (c *Core) Watch(ctx context.Context, version, topic string, from eventlog.Position, p socket.Principal, deliver func(hub.Event)) (stop func(), start eventlog.Start, err error) {
	resource, id, _ := strings.Cut(topic, "/")
	if resource == "" || id == "" || strings.Contains(topic, "*") {
		return nil, eventlog.Start{}, socket.Errorf(socket.CodeInvalidArgument, "topic %q: want {resource}/{id}, e.g. orders/ord_1", topic)
	}
	t := c.Acquire()
	defer t.Release()
	v := t.cfg.Versions[version]
	if v == nil {
		return nil, eventlog.Start{}, socket.Errorf(socket.CodeNotFound, "unknown API version %q", version)
	}
	res := v.Resources[resource]
	if res == nil || t.clients[res.Service] == nil {
		return nil, eventlog.Start{}, socket.Errorf(socket.CodeNotFound, "API version %s has no resource %q", version, resource)
	}
	if c.events.log != nil {
		return c.events.log.Watch(ctx, publisherOf(t.cfg.Services[res.Service]), topic, from, p, deliver)
	}
	current := func() *caller.Client {
		if t := c.current.Load(); t != nil {
			return t.clients[res.Service]
		}
		return nil
	}
	stop, seq, err := c.hub.Watch(ctx, res.Service, topic, t.clients[res.Service], current, p, !res.NoConflate, deliver)
	return stop, eventlog.Start{Seq: seq}, err
}

// publisherOf is the name a service publishes its events under (their
// Streamgate-Service): a service on NATS's target (its micro service's
// name), another's own name.
func publisherOf(svc *config.Service) string {
	if svc.Transport == config.TransportNATS {
		return svc.Target
	}
	return svc.Name
}
