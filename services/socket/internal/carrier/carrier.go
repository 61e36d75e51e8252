// Package carrier is the seam between a socket server and a transport other
// than its gRPC stream (NATS request-reply, see package natsserve): the
// transport decodes request frames, hands them to the server's Frames, and
// carries the response frames back. Admission, budgets, idempotency,
// coalescing and the handlers are the server's own, the same code the
// stream runs.
//
// A transport reaches a server through Server.Serve: it passes a Listener,
// a net.Listener that also carries frames, and Serve hands it the server's
// Frames. The runtime's API gains nothing for it.
package carrier

import (
	"context"
	"log/slog"
	"net"
	"time"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

// Identity names the server a transport carries frames for.
type Identity struct {
	// Name is the service's name.
	Name string
	// Version is the service's build version, as Describe shows it.
	Version string
	// Instance tells this server from the service's other instances.
	Instance string
}

// Frames is a server's frame path, as a transport feeds it.
type Frames interface {
	// Identity names the server.
	Identity() Identity
	// Authenticate finds the key whose secret a request presents; "" is no
	// key. Verifications are cached, so a request pays no hash. A refusal
	// is an UNAUTHENTICATED *status.Error.
	Authenticate(secret string) (*keyring.Entry, *status.Error)
	// Call admits one request frame for key and runs it within the frame's
	// timeout_ms (a write runs on after ctx ends, as on the stream), and
	// returns its response frame, refusals included.
	Call(ctx context.Context, key *keyring.Entry, req *socketv1.Request) *socketv1.Response
	// Describe is the server's catalogue as key may see it; a nil key sees
	// every action.
	Describe(key *keyring.Entry) *socketv1.DescribeResponse
	// DrainTimeout bounds how long a transport waits for the requests in
	// flight once it stops taking new ones.
	DrainTimeout() time.Duration
	// Logger is the server's logger.
	Logger() *slog.Logger
	// Events has sink called with every event the server publishes from
	// now on, until detach is called (detach waits for a call running).
	// sink runs while the server's event lock is held, so each topic's
	// events reach it in the order of their seqs: it must not block.
	Events(sink func(Event)) (detach func())
	// CountEvent records in the server's metrics what the transport did
	// with an event Events handed it.
	CountEvent(o EventOutcome)
}

// Event is an event a server published, as Frames.Events hands it over.
type Event struct {
	// Topic is the topic it was published on.
	Topic string
	// Seq is the server's seq for the topic: from 1, one more per event
	// the server publishes on it.
	Seq uint64
	// Data is the event's JSON ("null" when none).
	Data []byte
	// Visibility is the JSON of the event's socket.Visibility ("{}": only
	// callers whose key delegates see it).
	Visibility []byte
}

// EventOutcome is what a transport did with an event handed to it.
type EventOutcome uint8

// The outcomes a transport reports with CountEvent.
const (
	// EventStored: the event was stored (acknowledged).
	EventStored EventOutcome = iota + 1
	// EventFailed: the event was not stored (no stream holds its topic,
	// or storing failed on every attempt).
	EventFailed
	// EventDropped: the transport's queue was full; the event was not
	// even tried.
	EventDropped
)

// Listener is a net.Listener that also carries frames over its transport.
// Server.Serve calls Carry with the server's Frames, and serves the gRPC
// stream on Stream when it is not nil.
type Listener interface {
	net.Listener
	// Carry serves f until ctx ends, then stops taking requests, waits
	// for those in flight (at most f.DrainTimeout()) and returns. It
	// returns early with the error if the transport fails.
	Carry(ctx context.Context, f Frames) error
	// Stream is the listener for the gRPC stream beside the transport, or
	// nil when the server serves over the transport alone.
	Stream() net.Listener
}

// ErrDraining answers a frame that arrives once the transport stops taking
// requests: it did not run, and may be sent to another instance.
var ErrDraining = status.Errorf(status.CodeUnavailable, "the instance is draining: send the request to another instance").
	WithDetails(map[string]any{wire.DetailReason: wire.ReasonDraining})
