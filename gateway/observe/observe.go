// Package observe is the gateway's one observation hook. Every edge (a
// REST request, a WebSocket request frame, a GatewayService call) makes a
// Record and the gateway's Observers are told, in order, what happens to
// it as typed events:
//
//	begin → resolved → (stepBegan, stepEnded)* / cached / idempotency → shed → answered → end
//
//	obs := observe.New(observe.NewStats(), metrics, observe.NewAccessLog(logger), observe.NewTracer())
//	r := obs.NewRecord(observe.ProtocolHTTP, "GET")
//	ctx = r.Begin(ctx)
//	defer r.End(ctx)
//	r.Resolve(ctx, route, "alice")
//	r.Answer(ctx, 200, nil, "hit", false)
//
// The Prometheus metrics (Metrics), the access log (AccessLog), the traces
// (Tracer) and the route stats behind ListRoutes (Stats) are the
// observers. None of them wraps the ResponseWriter: the REST edge notes
// the status it wrote in the record. The record holds plain facts (the
// version, the route's names and actions, the principal's subject, the
// status and code, the cache outcome), never the gateway's own types.
// grpc-go's stats.Handler is the model; each event is a method rather
// than one method taking an interface, so no event is allocated.
package observe

import (
	"context"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/status"
)

// Observer is told every request's events. Its methods run on the
// request's path: they must be cheap and never block. An observer embeds
// NoObserver for the events it ignores.
type Observer interface {
	// Route returns what the observer keeps for one route of a new table
	// (its series, its counters); the events of the route's requests find
	// it in the Route's state. nil: nothing.
	Route(ri *Route) any
	// Begin: a request began (protocol, method, path and request id are
	// set). The context it returns is the request's from then on.
	Begin(ctx context.Context, r *Record) context.Context
	// Resolved: the request's route, version and caller are known.
	Resolved(ctx context.Context, r *Record)
	// StepBegan: a pipeline step (or an undo action) is about to be sent;
	// the context it returns is the step's.
	StepBegan(ctx context.Context, r *Record, st *config.Step) context.Context
	// StepEnded: the step's outcome; ctx is the one StepBegan returned.
	StepEnded(ctx context.Context, r *Record, e StepOutcome)
	// Cached: how a read was answered, or that a write invalidated reads.
	Cached(r *Record, e CacheEvent)
	// Idempotency: an Idempotency-Key request replayed or refused.
	Idempotency(r *Record, e IdempotencyOutcome)
	// Shed: the route's answer shed load (429 RESOURCE_EXHAUSTED, 503
	// UNAVAILABLE).
	Shed(r *Record, err *status.Error)
	// Answered: status, code, cache and replayed are set.
	Answered(ctx context.Context, r *Record)
	// End: the request is over; r is reused after End returns.
	End(ctx context.Context, r *Record)
	// Connection: a WebSocket connection's event.
	Connection(e ConnEvent)
}

// NoObserver ignores every event; observers embed it.
type NoObserver struct{}

// Route keeps nothing.
func (NoObserver) Route(*Route) any { return nil }

// Begin returns ctx.
func (NoObserver) Begin(ctx context.Context, _ *Record) context.Context { return ctx }

// Resolved ignores the event.
func (NoObserver) Resolved(context.Context, *Record) {}

// StepBegan returns ctx.
func (NoObserver) StepBegan(ctx context.Context, _ *Record, _ *config.Step) context.Context {
	return ctx
}

// StepEnded ignores the event.
func (NoObserver) StepEnded(context.Context, *Record, StepOutcome) {}

// Cached ignores the event.
func (NoObserver) Cached(*Record, CacheEvent) {}

// Idempotency ignores the event.
func (NoObserver) Idempotency(*Record, IdempotencyOutcome) {}

// Shed ignores the event.
func (NoObserver) Shed(*Record, *status.Error) {}

// Answered ignores the event.
func (NoObserver) Answered(context.Context, *Record) {}

// End ignores the event.
func (NoObserver) End(context.Context, *Record) {}

// Connection ignores the event.
func (NoObserver) Connection(ConnEvent) {}

// StepOutcome is a pipeline step's outcome.
type StepOutcome struct {
	Step     *config.Step
	UndoOf   *config.Step // for an undo action: the step it undid; nil for a step
	Replayed bool         // the service answered with an earlier request's stored outcome
	Err      error
}

// CacheEvent is what the cache did for a request of the route.
type CacheEvent struct {
	Invalidation bool         // a write dropped the cached reads it may have changed (Read is unset)
	Read         CacheOutcome // how a read was answered
	Cacheable    bool         // the route's reads are cached: a miss is a cache miss
}

// CacheOutcome is how a read was answered; it is sent as X-Cache.
type CacheOutcome uint8

// The outcomes of a read.
const (
	CacheMiss        CacheOutcome = iota // the service answered this read
	CacheHit                             // the cache answered
	CacheCoalesced                       // an identical read in flight answered
	CacheBypass                          // an admin's Cache-Control: no-cache: the service answered, nothing shared or stored
	CacheUnavailable                     // the cache's generations could not be read (its Redis is down): as bypass
)

// String is the outcome's X-Cache value.
func (o CacheOutcome) String() string {
	switch o {
	case CacheHit:
		return "hit"
	case CacheCoalesced:
		return "coalesced"
	case CacheBypass:
		return "bypass"
	case CacheUnavailable:
		return "unavailable"
	}
	return "miss"
}

// IdempotencyOutcome is an Idempotency-Key request that did not run.
type IdempotencyOutcome struct {
	Replayed bool   // answered with the stored answer
	Conflict string // refused: reason idempotency_key_in_use or idempotency_key_reused
}

// ConnEvent is a WebSocket connection's event.
type ConnEvent struct {
	Kind ConnEventKind
	// FrameType is FrameReceived's frame type: auth, request, cancel,
	// subscribe, unsubscribe, or invalid.
	FrameType string
	// States is EventConflated's count of skipped states (0 counts 1).
	States int
}

// ConnEventKind says what happened to a connection.
type ConnEventKind uint8

// The kinds of ConnEvent.
const (
	SocketOpened ConnEventKind = iota
	SocketClosed
	FrameReceived
	FrameSent
	SocketCutOff
	// EventConflated is an event a WebSocket client skipped: a newer
	// state of its topic replaced it while it was queued.
	EventConflated
)

// Protocols of requests.
const (
	ProtocolHTTP      = "http"
	ProtocolWebSocket = "websocket"
	ProtocolGRPC      = "grpc"
)

// StatusClientGone is the status of a request whose client left before
// any answer (nginx's convention).
const StatusClientGone = 499

// codeOK is the code of an answer without an error.
const codeOK = "OK"

// Observers are the gateway's observers, in the order they are told.
type Observers []Observer

// indexed is an observer that keeps state per route: it learns its index
// in the Observers, where its state is in each Route.
type indexed interface{ setIndex(i int) }

// New returns the observers, told in the order given.
func New(list ...Observer) Observers {
	for i, o := range list {
		if x, ok := o.(indexed); ok {
			x.setIndex(i)
		}
	}
	return list
}

// Connection tells the observers a WebSocket connection's event.
func (o Observers) Connection(e ConnEvent) {
	for _, x := range o {
		x.Connection(e)
	}
}
