// Package wsedge is the gateway's WebSocket edge, GET /{version}/socket
// (README, "WebSocket"): it translates the streamgate.v1 frames into
// requests for the gateway's invocation core and the core's answers and
// events back into frames. Everything WebSocket-specific lives here: the
// frames, the per-socket limits, back-pressure, pings, close codes and the
// drain. What a request means (routes, access rules, idempotency, cache)
// is the core's, reached only through Core.
package wsedge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// Core is what the WebSocket edge asks of the gateway's invocation core.
// The gateway root implements it; an edge holds no route table, client or
// observer of its own.
type Core interface {
	// Call runs one request frame as REST runs a request (the same route
	// table, access rules, pipelines, cache, coalescing, idempotency and
	// limits), observed as a request of its own, and returns its answer.
	// A request the core cannot resolve is answered with an error, never
	// refused otherwise.
	Call(ctx context.Context, req Request) Answer
	// Admit authenticates credentials against the configuration in force,
	// as REST authenticates its headers, and returns what a socket takes
	// from that configuration.
	Admit(c Credentials) (Admission, *status.Error)
	// Watch watches the topic of the version for the caller with the
	// credentials, from the position the client last saw: deliver gets
	// its events and gap markers in order, one at a time, until stop is
	// called or ctx ends. start says whether every event after from
	// follows (Recovered) and which seq the events follow. A watch that
	// cannot be made is answered with refused (its Err set; stop is nil).
	// The caller's right to read the topic's object is checked by the edge
	// first (a Call of GET {resource}/{id}).
	Watch(ctx context.Context, version, topic string, from eventlog.Position, c Credentials, deliver func(Event)) (stop func(), start eventlog.Start, refused Answer)
	// Observe tells the gateway's observers a connection's event.
	Observe(e observe.ConnEvent)
}

// Credentials are what a socket's requests present, as REST's headers:
// the upgrade's Authorization and X-API-Key headers, or the auth frame's
// token as "Bearer TOKEN". Zero: anonymous.
type Credentials struct {
	Authorization string
	APIKey        string
}

// Admission is what Core.Admit found.
type Admission struct {
	// Present reports whether the credentials were not empty.
	Present bool
	// Origins are the CORS allowed origins, checked at the upgrade.
	Origins []string
	// MaxBodyBytes is http.max_body_bytes: a frame may carry that much
	// body (SocketLimits.MaxFrameBytes's default).
	MaxBodyBytes int64
}

// Request is one request frame for the core: either the path form
// (Method and Path, relative to Version) or the action form (Action and
// ResourceID, sent by the version's route that sends the action).
type Request struct {
	Version     string
	Credentials Credentials

	Method string // upper case
	Path   string // relative to the version, with its query: /users/1?x=y

	Action     string
	ResourceID string // the action form's id; "" for none

	Body           json.RawMessage // JSON, or nil
	IdempotencyKey string
	Timeout        time.Duration // 0: the route's
}

// Answer is a request's outcome as the socket shows it.
type Answer struct {
	Status     int
	Result     json.RawMessage
	Err        *status.Error
	Replayed   bool   // an idempotency replay
	Location   string // for 201
	RetryAfter int    // seconds; 0: none
}

// Event is an event of a watched topic, or a gap marker (Gap: events up
// to Seq may be missing; no Data).
type Event struct {
	Topic string
	Seq   uint64
	Epoch string // the epoch Seq belongs to; empty without the event log
	Data  json.RawMessage
	Gap   bool
	// NoConflate says every event of the topic must reach the client (its
	// resource says conflate: false): a slow client's queued event is
	// never replaced by a newer one.
	NoConflate bool
	// Skipped is how many events of the topic were conflated away before
	// this one on their way to the socket (the hub's count); the socket
	// adds the ones it replaces itself.
	Skipped int
}

// Resource is the last path segment of the endpoint, GET /{version}/socket.
const Resource = socketResource

// Edge is the WebSocket endpoint: its open sockets and how it serves one.
type Edge struct {
	core    Core
	limits  Limits
	logger  *slog.Logger
	sockets socketSet
}

// New makes the endpoint; limits' zero fields take their defaults.
func New(core Core, limits Limits, logger *slog.Logger) *Edge {
	return &Edge{core: core, limits: limits, logger: logger}
}

// Closed reports whether Drain began: new sockets are refused.
func (e *Edge) Closed() bool { return e.sockets.isClosed() }

// Drain closes the sockets politely (1001, after their answers in
// flight), refusing new ones, and waits until ctx ends for them to close.
func (e *Edge) Drain(ctx context.Context) { e.sockets.drain(ctx) }

// CheckUpgrade checks that r asks for a WebSocket with the streamgate.v1
// subprotocol; otherwise it returns the status and error to answer with
// (setting the Upgrade header h needs for 426).
func CheckUpgrade(h http.Header, r *http.Request, version string) (int, *status.Error) {
	switch {
	case !headerToken(r.Header, "Connection", "upgrade") || !headerToken(r.Header, "Upgrade", "websocket"):
		h.Set("Upgrade", "websocket")
		return http.StatusUpgradeRequired, socket.Errorf(socket.CodeInvalidArgument,
			"GET /%s/%s is a WebSocket endpoint (subprotocol %s)", version, socketResource, socketSubprotocol)
	case !headerToken(r.Header, "Sec-WebSocket-Protocol", socketSubprotocol):
		return http.StatusBadRequest, socket.Errorf(socket.CodeInvalidArgument, "offer the WebSocket subprotocol %s", socketSubprotocol)
	}
	return 0, nil
}

// headerToken reports whether a comma-separated header lists token
// (case-insensitively).
func headerToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// failed answers an error with the status given.
func failed(status int, err *status.Error) Answer {
	return Answer{Status: status, Err: err}
}
