// Package natsserve serves a socket.Server's actions over NATS
// request-reply, as well as or instead of its gRPC stream:
//
//	nc, _ := nats.Connect("nats://127.0.0.1:4222")
//	defer nc.Close()
//	err := srv.Serve(ctx, natsserve.Listen(nc, nil))   // NATS alone
//	err := srv.Serve(ctx, natsserve.Listen(nc, tcpLis)) // NATS and the stream
//
// The service is a NATS micro service (package micro of the NATS Go
// client) of its name, one endpoint per action (subject
// streamgate.<service>.<ACTION>, metadata the action's catalogue entry),
// and its instances share one queue group: a request
// goes to one of them, and an instance that stops simply stops taking
// requests. The frames are the stream's (protobuf Request and Response),
// run by the server's own admission and handlers: the same codes, the same
// timeout_ms budget, idempotency keys, replayed marker and coalescing. The
// caller's key travels in each request's Authorization header ("Bearer
// KEY") and is verified with the server's keyring, verifications cached.
//
// With WithEvents, the instance also stores every event its server
// publishes in JetStream (as well as sending it to the streams subscribed
// to it), where the gateway reads them, and callers over NATS subscribe
// to them (caller.WithNATS): see WithEvents.
//
// NATS carries no cancellation: a request runs until its timeout_ms (the
// caller's deadline) or the action's Timeout ends it. When Serve's context
// ends, the endpoints stop taking requests, those in flight are answered
// (within WithDrainTimeout), and a frame that still arrives is answered
// UNAVAILABLE (reason draining) without running, for the caller to send
// elsewhere. The connection stays the caller's to close.
//
// This is a package of its own so the service runtime stays small and
// free of NATS for services that do not use it; it reaches the server
// through Serve, the runtime's API unchanged.
package natsserve

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/proto"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/carrier"
	"github.com/streamgate/streamgate/services/socket/internal/natswire"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/status"
)

// Listener carries a server's frames over NATS; pass it to Serve.
type Listener struct {
	nc     *nats.Conn
	stream net.Listener  // the gRPC stream's, or nil
	closed chan struct{} // closed by Close
	once   sync.Once

	events     bool   // WithEvents: store events in JetStream
	eventRoot  string // their subjects' root; "" is eventlog.DefaultRoot
	eventQueue int    // how many events wait to be stored

	mu       sync.Mutex // guards inFlight, draining, idle
	inFlight int
	draining bool
	idle     chan struct{} // closed when draining and nothing is in flight
}

// Listen returns a listener that serves over nc, and over the gRPC stream
// on stream when it is not nil.
func Listen(nc *nats.Conn, stream net.Listener, opts ...Option) *Listener {
	l := &Listener{nc: nc, stream: stream, closed: make(chan struct{}), idle: make(chan struct{}), eventQueue: eventQueue}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Option tunes a Listener.
type Option func(*Listener)

// WithEvents stores every event the server publishes while it serves in
// JetStream too, on the event's subject under root ("" is
// "streamgate.events"; the gateway's events root must be the same), in
// the stream the gateway made for the topic's window; the streams
// subscribed to the event get it as before. Default: events go to
// subscribed streams only.
//
// Publish never waits for JetStream: events wait in a queue of 4096 in
// the order they were published and one goroutine stores them one at a
// time, each acknowledged before the next goes, so a topic's events are
// stored in their order. An event that finds the queue full is dropped;
// an event of a topic no stream holds is not stored (nor retried for a
// second, per collection); an event JetStream does not acknowledge is
// sent again, at most 3 times, with the same message id
// (SERVICE/INSTANCE/N), so it is stored once. The metrics count
// each (socket.WithMetrics: streamgate_service_events_stored_total,
// _store_failed_total, _store_dropped_total), and the server's logger
// says so, at most every 10s. When Serve's context ends, once the
// requests in flight are answered, the events queued are stored, within
// the drain timeout (socket.WithDrainTimeout) again; those left then are
// counted as failed.
//
// Each event carries the headers Streamgate-Topic, Streamgate-Service,
// Streamgate-Visibility (JSON), Streamgate-Instance and Streamgate-Seq
// (this instance's seq for the topic); docs/protocol.md §10. The
// instance also answers callers' questions about which events their key
// may receive (caller.WithNATS's Subscribe).
func WithEvents(root string) Option {
	return func(l *Listener) { l.events, l.eventRoot = true, root }
}

// Accept accepts the gRPC stream's connections; with no stream it waits
// for Close.
func (l *Listener) Accept() (net.Conn, error) {
	if l.stream != nil {
		return l.stream.Accept()
	}
	<-l.closed
	return nil, net.ErrClosed
}

// Close closes the stream's listener, if any. The NATS connection stays
// open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	if l.stream != nil {
		return l.stream.Close()
	}
	return nil
}

// Addr is the stream's address, or the NATS server's URL.
func (l *Listener) Addr() net.Addr {
	if l.stream != nil {
		return l.stream.Addr()
	}
	return natsAddr(l.nc.ConnectedUrl())
}

// Stream is the listener of the gRPC stream beside NATS, or nil.
func (l *Listener) Stream() net.Listener { return l.stream }

// Carry serves f's actions over NATS until ctx ends, then drains (see the
// package doc). Serve calls it.
func (l *Listener) Carry(ctx context.Context, f carrier.Frames) error {
	id := f.Identity()
	if err := natswire.CheckService(id.Name); err != nil {
		return err
	}
	// Events are stored from before the first request is taken.
	stopEvents := func(time.Duration) {}
	var store *eventStore
	if l.events {
		var err error
		if store, stopEvents, err = l.startEvents(f); err != nil {
			return err
		}
	}
	defer func() { stopEvents(f.DrainTimeout()) }()
	svc, err := micro.AddService(l.nc, micro.Config{
		Name:        id.Name,
		Version:     natswire.MicroVersion(id.Version),
		Description: "streamgate service " + id.Name,
		Metadata:    map[string]string{natswire.MetaVersion: id.Version, natswire.MetaInstance: id.Instance},
		QueueGroup:  natswire.QueueGroup,
	})
	if err != nil {
		return err
	}
	for _, a := range f.Describe(nil).GetActions() {
		err := svc.AddEndpoint(a.GetName(), l.handler(ctx, f, store),
			micro.WithEndpointSubject(natswire.Subject(id.Name, a.GetName())),
			micro.WithEndpointMetadata(natswire.EndpointMetadata(a)))
		if err != nil {
			_ = svc.Stop()
			return err
		}
	}
	<-ctx.Done()
	l.drain(svc, f.DrainTimeout()) // then the deferred stopEvents stores what is queued
	return nil
}

// startEvents stores f's events in JetStream and answers which events a
// key may receive, until the returned stop flushes the events queued
// (within timeout).
func (l *Listener) startEvents(f carrier.Frames) (store *eventStore, stop func(timeout time.Duration), err error) {
	store, flush, err := startEvents(l.nc, l.eventRoot, f, l.eventQueue)
	if err != nil {
		return nil, nil, err
	}
	// Answering grants comes second: an instance that answers stores its
	// events already.
	grants, err := l.nc.QueueSubscribe(natswire.EventsSubject(f.Identity().Name), natswire.QueueGroup, func(m *nats.Msg) {
		g := grant(f, bearer(m.Header.Get(natswire.HeaderAuthorization)))
		g.Root = l.eventRoot
		b, _ := json.Marshal(g)
		_ = m.Respond(b)
	})
	if err != nil {
		flush(0)
		return nil, nil, err
	}
	return store, func(timeout time.Duration) {
		_ = grants.Unsubscribe()
		flush(timeout)
	}, nil
}

// grant is which events the key whose secret a caller presents may
// receive: as on a stream, a delegating key every event, another key
// those its principal may see, and a key limited to some actions none.
func grant(f carrier.Frames, secret string) natswire.Grant {
	key, e := f.Authenticate(secret)
	if e == nil && len(key.Actions) > 0 {
		e = status.Errorf(status.CodePermissionDenied, "key %q is limited to some actions and may not subscribe", key.Name)
	}
	if e != nil {
		return natswire.Grant{Code: string(e.Code), Message: e.Message}
	}
	return natswire.Grant{Delegate: key.Delegate, Subject: key.Name, Roles: key.Roles}
}

// drain stops the endpoints, makes sure the NATS server routes nothing
// more here, and waits for the requests in flight, at most timeout.
func (l *Listener) drain(svc micro.Service, timeout time.Duration) {
	_ = svc.Stop()
	_ = l.nc.FlushTimeout(timeout)
	l.mu.Lock()
	l.draining = true
	if l.inFlight == 0 {
		close(l.idle)
	}
	l.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-l.idle:
	case <-timer.C:
	}
}

// handler answers each request on its own goroutine: the endpoint's
// subscription hands over one message at a time. With a store, an answer
// goes once the request's events are stored (eventStore.awaitStored).
func (l *Listener) handler(ctx context.Context, f carrier.Frames, store *eventStore) micro.Handler {
	work := context.WithoutCancel(ctx)
	return micro.HandlerFunc(func(r micro.Request) {
		var req socketv1.Request
		if err := proto.Unmarshal(r.Data(), &req); err != nil {
			l.refuse(r, &req, status.Errorf(status.CodeInvalidArgument, "the request is not a streamgate.socket.v1.Request frame"))
			return
		}
		key, e := f.Authenticate(bearer(r.Headers().Get(natswire.HeaderAuthorization)))
		if e != nil {
			l.refuse(r, &req, e)
			return
		}
		if !l.begin() {
			l.refuse(r, &req, carrier.ErrDraining)
			return
		}
		go func() {
			defer l.end()
			before := store.queued()
			resp := f.Call(work, key, &req)
			store.awaitStored(before)
			l.reply(r.Reply(), resp)
		}()
	})
}

// begin counts a request in flight, unless draining.
func (l *Listener) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.draining {
		return false
	}
	l.inFlight++
	return true
}

// end counts a request answered.
func (l *Listener) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight--; l.inFlight == 0 && l.draining {
		close(l.idle)
	}
}

// refuse answers a request that does not run.
func (l *Listener) refuse(r micro.Request, req *socketv1.Request, e *status.Error) {
	l.reply(r.Reply(), &socketv1.Response{Id: req.GetId(), Outcome: &socketv1.Response_Error{Error: wire.ErrorToProto(e)}})
}

// reply publishes a response frame to the request's reply subject (not
// through micro.Request.Respond, which is not for use after the handler
// returned). A reply NATS refuses (over its payload limit) is replaced by
// an INTERNAL error for the same request.
func (l *Listener) reply(to string, resp *socketv1.Response) {
	b, err := proto.Marshal(resp)
	if err == nil {
		err = l.nc.Publish(to, b)
	}
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		e := status.Errorf(status.CodeInternal, "the answer could not be sent: %v", err)
		b, _ = proto.Marshal(&socketv1.Response{Id: resp.GetId(), Outcome: &socketv1.Response_Error{Error: wire.ErrorToProto(e)}})
		_ = l.nc.Publish(to, b)
	}
}

// bearer is the secret in "Bearer SECRET", or "".
func bearer(h string) string {
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return secret
}

// natsAddr is a NATS server's URL as a net.Addr.
type natsAddr string

func (a natsAddr) Network() string { return "nats" }
func (a natsAddr) String() string  { return string(a) }
