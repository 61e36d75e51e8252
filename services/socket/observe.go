package socket

import (
	"context"
	"encoding/json"
	"time"

	"github.com/streamgate/streamgate/status"
)

// Observation is one hook: the server tells a list of observers what
// happens to each request frame and to the server as typed events (grpc-go's
// stats.Handler is the model). The action stats Describe reports
// (stats.go), the Prometheus metrics (metrics.go) and the server spans
// (trace.go) are the observers. Each event is a method, so none is
// allocated.

// serverObserver is told a server's events. Its methods run on the
// request's path: they must be cheap and never block. An observer embeds
// noServerObserver for the events it ignores.
type serverObserver interface {
	// action returns what the observer keeps for a registered action (its
	// series); events find it in action.observed. nil: nothing.
	action(a *action) any
	// started: an admitted request is about to run; the context it
	// returns is the run's.
	started(ctx context.Context, a *action, req *Request) context.Context
	// finished: the run's outcome; ctx is the one started returned.
	finished(ctx context.Context, a *action, e *status.Error)
	// handlerBegan, handlerEnded: the handler ran (a coalesced run answers
	// many requests).
	handlerBegan(a *action)
	handlerEnded(a *action, d time.Duration, e *status.Error)
	// coalesced: a request was answered by another request's run.
	coalesced(a *action)
	// answered: a request frame was answered, run or refused (a is nil
	// when the server has no such action).
	answered(a *action, e *status.Error)
	// server: a server-wide event.
	server(e serverEvent)
}

// noServerObserver ignores every event.
type noServerObserver struct{}

func (noServerObserver) action(*action) any { return nil }
func (noServerObserver) started(ctx context.Context, _ *action, _ *Request) context.Context {
	return ctx
}
func (noServerObserver) finished(context.Context, *action, *status.Error)   {}
func (noServerObserver) handlerBegan(*action)                               {}
func (noServerObserver) handlerEnded(*action, time.Duration, *status.Error) {}
func (noServerObserver) coalesced(*action)                                  {}
func (noServerObserver) answered(*action, *status.Error)                    {}
func (noServerObserver) server(serverEvent)                                 {}

// serverEvent is a server-wide event.
type serverEvent struct {
	kind serverEventKind
	n    int64 // streamChanged, runningChanged: the change; admittedOnStream: the stream's requests in flight
}

type serverEventKind uint8

const (
	streamChanged    serverEventKind = iota // a stream opened (+1) or ended (-1)
	runningChanged                          // a request took (+1) or left (-1) the server's in-flight count
	admittedOnStream                        // a request was admitted on a stream
	keyRefused                              // a stream or call was refused for its key
	eventPublished
	eventDelivered
	eventDropped
	eventStored       // a transport stored an event (JetStream, see natsserve)
	eventStoreFailed  // a transport could not store an event
	eventStoreDropped // a transport's queue was full: the event was not stored
)

// serverObservers are a server's observers, in the order they are told.
type serverObservers []serverObserver

func (o serverObservers) register(a *action) {
	a.observed = make([]any, len(o))
	for i, x := range o {
		a.observed[i] = x.action(a)
	}
}

func (o serverObservers) started(ctx context.Context, a *action, req *Request) context.Context {
	for _, x := range o {
		ctx = x.started(ctx, a, req)
	}
	return ctx
}

func (o serverObservers) finished(ctx context.Context, a *action, e *status.Error) {
	for _, x := range o {
		x.finished(ctx, a, e)
	}
}

func (o serverObservers) handlerBegan(a *action) {
	for _, x := range o {
		x.handlerBegan(a)
	}
}

func (o serverObservers) handlerEnded(a *action, d time.Duration, e *status.Error) {
	for _, x := range o {
		x.handlerEnded(a, d, e)
	}
}

func (o serverObservers) coalesced(a *action) {
	for _, x := range o {
		x.coalesced(a)
	}
}

func (o serverObservers) answered(a *action, e *status.Error) {
	for _, x := range o {
		x.answered(a, e)
	}
}

func (o serverObservers) server(e serverEvent) {
	for _, x := range o {
		x.server(e)
	}
}

// runObserved runs an admitted request between its started and finished
// events.
func (s *Server) runObserved(ctx context.Context, adm *admitted) (json.RawMessage, *status.Error) {
	ctx = s.obs.started(ctx, adm.action, &adm.req)
	res, e := s.run(ctx, adm)
	s.obs.finished(ctx, adm.action, e)
	return res, e
}
