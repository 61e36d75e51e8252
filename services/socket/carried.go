package socket

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/carrier"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

// carried is the server's frame path as a transport other than the gRPC
// stream feeds it (package carrier): the same admission and handlers as
// the stream's unary Call.
type carried struct {
	s     *Server
	mu    sync.Mutex
	known map[string]*keyring.Entry // verified secrets, so a request pays no hash
}

// maxKnownKeys bounds the verified secrets kept; past it the cache starts
// again empty.
const maxKnownKeys = 1024

func (c *carried) Identity() carrier.Identity {
	return carrier.Identity{Name: c.s.cfg.Name, Version: c.s.cfg.Version, Instance: c.s.instance}
}

func (c *carried) DrainTimeout() time.Duration { return c.s.opts.drainTimeout }

func (c *carried) Authenticate(secret string) (*keyring.Entry, *status.Error) {
	s := c.s
	if s.opts.noAuth {
		return keyring.Anonymous(), nil
	}
	if secret == "" {
		s.obs.server(serverEvent{kind: keyRefused})
		return nil, Errorf(CodeUnauthenticated, "missing key: send the %q header %q", MetadataAuthorization, "Bearer KEY")
	}
	c.mu.Lock()
	e := c.known[secret]
	c.mu.Unlock()
	if e != nil {
		select {
		case <-e.Revoked():
		default:
			return e, nil
		}
	}
	e, err := s.opts.keys.Find(secret)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		delete(c.known, secret)
		s.obs.server(serverEvent{kind: keyRefused})
		return nil, err
	}
	if len(c.known) >= maxKnownKeys {
		clear(c.known)
	}
	c.known[secret] = e
	return e, nil
}

func (c *carried) Call(ctx context.Context, key *keyring.Entry, req *socketv1.Request) *socketv1.Response {
	// The transport cannot cancel a request: a read ends with its
	// deadline or when the server stops, like a write.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.s.stopped, cancel)
	defer stop()
	return c.s.call(ctx, key, req)
}

func (c *carried) Logger() *slog.Logger { return c.s.opts.logger }

func (c *carried) Events(sink func(carrier.Event)) (detach func()) {
	se := &c.s.events
	es := &eventSink{fn: sink}
	se.mu.Lock()
	se.sinks = append(se.sinks, es)
	se.mu.Unlock()
	return func() {
		se.mu.Lock()
		defer se.mu.Unlock()
		se.sinks = slices.DeleteFunc(se.sinks, func(x *eventSink) bool { return x == es })
	}
}

func (c *carried) CountEvent(o carrier.EventOutcome) {
	switch o {
	case carrier.EventStored:
		c.s.obs.server(serverEvent{kind: eventStored})
	case carrier.EventFailed:
		c.s.obs.server(serverEvent{kind: eventStoreFailed})
	case carrier.EventDropped:
		c.s.obs.server(serverEvent{kind: eventStoreDropped})
	}
}

// eventSink is a transport's sink of every event (carried.Events).
type eventSink struct{ fn func(carrier.Event) }

// toSinks hands an event to every sink. Called with mu held.
func (se *serverEvents) toSinks(topic string, seq uint64, data []byte, vis Visibility) {
	v, _ := json.Marshal(vis) // strings and bools: it cannot fail
	e := carrier.Event{Topic: topic, Seq: seq, Data: data, Visibility: v}
	for _, s := range se.sinks {
		s.fn(e)
	}
}

func (c *carried) Describe(key *keyring.Entry) *socketv1.DescribeResponse {
	return c.s.describe(key)
}

// call runs one request frame outside any stream (the unary Call, and the
// transports of package carrier): admission, the server-wide in-flight
// bound, the handler's context and the run, then the response frame.
func (s *Server) call(ctx context.Context, key *keyring.Entry, f *socketv1.Request) *socketv1.Response {
	id := f.GetId()
	adm, e := s.admit(key, f)
	if e != nil {
		s.refused(f.GetAction(), e)
		return newResponse(id, false, nil, e)
	}
	if !s.acquire() {
		s.refused(adm.action.name, errServerBusy)
		return newResponse(id, adm.raw, nil, errServerBusy)
	}
	defer s.release()
	hr := &run{}
	s.handlerContext(ctx, &adm, hr)
	hctx := hr.context()
	defer s.ended()
	defer hr.cancel()
	res, e := s.runObserved(hctx, &adm)
	s.obs.answered(adm.action, e)
	r := newResponse(id, adm.raw, res, e)
	r.Replayed = replayedIn(hctx)
	return r
}
