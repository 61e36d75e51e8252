package caller

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/protobuf/proto"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/natswire"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/status"
)

// WithNATS makes the client send its requests over NATS through nc
// instead of opening streams: Dial's target is then the service's name,
// the micro service its instances serve (see package natsserve), and the
// instances' queue group spreads the requests. The connection stays the
// caller's to close, and clients may share one.
//
// A request with no instance to take it fails at once with UNAVAILABLE
// (reason no_ready_instance), and so does one whose key the service
// refuses (the UNAUTHENTICATED refusal is the error's cause); the context's deadline bounds the request
// and travels as its timeout_ms. NATS cannot carry a cancellation: a
// cancelled request stops waiting at once, but the service runs it on
// until its deadline (or the action's Timeout). Describe asks the micro
// service's INFO. State is the connection's, TransientFailure while the
// last request found no instance. Subscribe receives the events the
// service's instances store in JetStream (natsserve.WithEvents, under the
// subject root "streamgate.events") as NATS publishes them: see
// Subscribe.
func WithNATS(nc *nats.Conn) Option {
	return func(c *config) { c.nats = nc }
}

// natsLink is a client's carrier when it sends over NATS.
type natsLink struct {
	nc      *nats.Conn
	service string
	key     string
	// absent says the last request or INFO found no instance (no
	// responders), until one answers.
	absent atomic.Bool
	grants natsGrant // which events the key may receive (natsevents.go)
}

// dialNATS returns a client for the service named target over nc.
func dialNATS(target string, cfg config) (*Client, error) {
	if err := natswire.CheckService(target); err != nil {
		return nil, err
	}
	c := newClient(target, cfg)
	if c.catalogue.named == "" {
		c.catalogue.named = target
	}
	c.nats = &natsLink{nc: cfg.nats, service: target, key: cfg.key}
	return c, nil
}

// state is State for a client over NATS: the connection's, and
// TransientFailure while the last request found no instance.
func (l *natsLink) state() connectivity.State {
	switch l.nc.Status() {
	case nats.CONNECTED:
		if l.absent.Load() {
			return connectivity.TransientFailure
		}
		return connectivity.Ready
	case nats.CLOSED:
		return connectivity.Shutdown
	case nats.CONNECTING, nats.RECONNECTING:
		return connectivity.Connecting
	}
	return connectivity.TransientFailure
}

// natsSend is send over NATS: one request per attempt, sent again only
// when an instance refused it unrun because it was draining.
func (c *Client) natsSend(ctx context.Context, action string, frame func() *socketv1.Request, info ActionInfo) (Reply, error) {
	budget := c.retryBudget(info)
	for {
		r, e := c.nats.request(ctx, action, frame())
		if e != nil {
			return Reply{}, c.unknownAction(action, e)
		}
		if retryDraining(r) && budget.spend(false) {
			continue
		}
		res, err := wire.Result(r)
		return Reply{Result: res, Replayed: r.GetReplayed()}, err
	}
}

// unknownAction is NOT_FOUND, as a stream's instance answers, for a
// request no instance took when the service's catalogue, as its INFO
// told it, has no such action; otherwise it is err.
func (c *Client) unknownAction(action string, err *status.Error) *status.Error {
	if err.Details[wire.DetailReason] != wire.ReasonNoReadyInstance || !c.catalogue.learned.Load() {
		return err
	}
	if _, known := c.Action(action); known {
		return err
	}
	return status.Errorf(status.CodeNotFound, "service %q has no action %q", c.nats.service, action).
		WithDetails(map[string]any{"action": action, "service": c.nats.service})
}

// request sends one frame and waits for its response frame.
func (l *natsLink) request(ctx context.Context, action string, f *socketv1.Request) (*socketv1.Response, *status.Error) {
	data, err := proto.Marshal(f)
	if err != nil {
		return nil, status.Errorf(status.CodeInternal, "the request could not be encoded").WithCause(err)
	}
	msg := nats.NewMsg(natswire.Subject(l.service, action))
	msg.Data = data
	if l.key != "" {
		msg.Header.Set(natswire.HeaderAuthorization, "Bearer "+l.key)
	}
	m, err := l.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return nil, l.failed(ctx, err)
	}
	l.absent.Store(false)
	var r socketv1.Response
	if err := proto.Unmarshal(m.Data, &r); err != nil {
		return nil, status.Errorf(status.CodeInternal, "service %s answered with no streamgate.socket.v1.Response frame", l.service).WithCause(err)
	}
	if e := r.GetError(); e.GetCode() == string(status.CodeUnauthenticated) {
		// The client's own key is refused: as on a stream, which this
		// refusal would not let open, the service has no instance for
		// this client; the refusal is the cause, never the answer (the
		// client's callers did not present that key).
		return nil, l.noInstance(wire.ErrorFromProto(e))
	}
	return &r, nil
}

// noInstance is the error of a request no instance would take.
func (l *natsLink) noInstance(cause error) *status.Error {
	return status.Errorf(status.CodeUnavailable, "service %s has no ready instance", l.service).
		WithDetails(map[string]any{wire.DetailReason: wire.ReasonNoReadyInstance}).WithCause(cause)
}

// failed is the error of a request NATS did not answer.
func (l *natsLink) failed(ctx context.Context, err error) *status.Error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		l.absent.Store(true)
		return l.noInstance(err)
	case ctx.Err() != nil:
		return status.AsError(ctx.Err())
	case errors.Is(err, nats.ErrConnectionClosed):
		return errClientClosed
	case errors.Is(err, nats.ErrMaxPayload):
		// Never sent: the server's limit is below the frame.
		return status.Errorf(status.CodeInvalidArgument, "the request is larger than NATS carries (%d bytes)", l.nc.MaxPayload()).
			WithDetails(map[string]any{wire.DetailReason: "body_too_large", "limit": l.nc.MaxPayload()})
	}
	return status.Errorf(status.CodeUnavailable, "the request to service %s over NATS failed", l.service).WithCause(err)
}

// describe asks one instance for the micro service's INFO and turns it
// into the stream's Describe answer.
func (l *natsLink) describe(ctx context.Context) (*socketv1.DescribeResponse, error) {
	subject, err := micro.ControlSubject(micro.InfoVerb, l.service, "")
	if err != nil {
		return nil, status.Errorf(status.CodeInvalidArgument, "service %q", l.service).WithCause(err)
	}
	m, err := l.nc.RequestWithContext(ctx, subject, nil)
	if err != nil {
		return nil, l.failed(ctx, err)
	}
	l.absent.Store(false)
	var info micro.Info
	if err := json.Unmarshal(m.Data, &info); err != nil {
		return nil, status.Errorf(status.CodeInternal, "service %s answered INFO with no micro info", l.service).WithCause(err)
	}
	d := &socketv1.DescribeResponse{Service: info.Name, Version: info.Metadata[natswire.MetaVersion], Instance: info.Metadata[natswire.MetaInstance]}
	for _, e := range info.Endpoints {
		d.Actions = append(d.Actions, natswire.Action(e.Name, e.Metadata))
	}
	return d, nil
}

// natsDescribe is Describe over NATS.
func (c *Client) natsDescribe(ctx context.Context) (*socketv1.DescribeResponse, error) {
	d, err := c.nats.describe(ctx)
	if err != nil {
		return nil, err
	}
	c.catalogue.learn(d)
	return d, nil
}
