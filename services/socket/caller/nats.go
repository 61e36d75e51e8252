package caller

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/protobuf/proto"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/natsconn"
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
// refuses (the UNAUTHENTICATED refusal is the error's cause), and one
// sent while the connection to NATS is down (with a retry hint: the
// connection's reconnect wait); the context's deadline bounds the request
// and travels as its timeout_ms. NATS never says that an instance died
// with a request: an idempotent request (reads, writes declared
// idempotent) is sent again when no answer came within a quarter of the
// time it had, or once the connection is back after it dropped (up to
// WithMaxAttempts copies; the first answer wins); any other request is
// sent once, and fails with UNAVAILABLE when the connection dropped
// before its answer, DEADLINE_EXCEEDED at its deadline, both with reason
// outcome_unknown. NATS cannot carry a cancellation: a
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
	conn   *natsconn.Watcher // when answers are lost to a dropped connection
	grants natsGrant         // which events the key may receive (natsevents.go)
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
	c.nats.conn = natsconn.Watch(cfg.nats, &c.wg, c.ctx.Done())
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

// natsSend is send over NATS. An idempotent request (a read, or a write
// its action declares idempotent) goes through hedged: sent again when its
// answer is late or lost. Any other request is sent once: when its answer
// is lost (the connection to NATS dropped while it waited) it fails with
// UNAVAILABLE, reason outcome_unknown, and at its deadline with
// DEADLINE_EXCEEDED, same reason. Either kind is sent again when an
// instance refused it unrun because it was draining.
func (c *Client) natsSend(ctx context.Context, action string, frame func() *socketv1.Request, info ActionInfo) (Reply, error) {
	budget := c.retryBudget(info)
	for {
		var r *socketv1.Response
		var e *status.Error
		if info.Idempotent {
			r, e = c.nats.hedged(ctx, action, frame, &budget)
		} else {
			r, e = c.nats.request(ctx, action, frame())
		}
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

// hedgeShare is the share of the time a request has left after which an
// idempotent request with no answer yet is sent again (a quarter: two
// more copies fit in its deadline); hedgeNoDeadline is the wait when the
// request has no deadline.
const (
	hedgeShare      = 4
	hedgeNoDeadline = time.Second
)

// attempt is one copy's outcome in hedged.
type attempt struct {
	r   *socketv1.Response
	err *status.Error
}

// hedged sends an idempotent request and returns the first answer any
// copy of it gets. An instance that dies with the request never answers,
// and nothing tells the caller, so when no answer came after a quarter of
// the time left another copy goes to the queue group; a copy whose
// connection dropped is sent again once it is back. Each copy spends one
// of the budget's sends (WithMaxAttempts).
func (l *natsLink) hedged(ctx context.Context, action string, frame func() *socketv1.Request, budget *retryBudget) (*socketv1.Response, *status.Error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the copies still waiting return at once
	answers := make(chan attempt, max(budget.sends, 1))
	inFlight := 0
	send := func() {
		inFlight++
		f := frame()
		go func() {
			r, err := l.request(ctx, action, f)
			answers <- attempt{r, err}
		}()
	}
	send()
	delay := hedgeNoDeadline
	if d, ok := ctx.Deadline(); ok {
		delay = max(time.Until(d)/hedgeShare, time.Millisecond)
	}
	hedge := time.NewTimer(delay)
	defer hedge.Stop()
	var back <-chan struct{}   // while a copy waits for the connection
	var pause <-chan time.Time // while a copy waits for an instance to return
	var lost *status.Error     // a copy that may have run, answer lost
	for {
		select {
		case a := <-answers:
			inFlight--
			if a.err == nil {
				return a.r, nil
			}
			sent := a.err.Reason() == wire.ReasonOutcomeUnknown
			if sent {
				lost = a.err
			}
			if inFlight > 0 || back != nil || pause != nil {
				continue
			}
			if !l.resendable(a.err, lost) || !budget.spend(sent) {
				return nil, worstOf(lost, a.err)
			}
			if up, again := l.conn.Up(); up.Err() != nil {
				back = again
				continue
			}
			if lost != nil && !sent {
				// The connection is back but no instance is yet: they
				// reconnect too.
				pause = time.After(natsReturnPause)
				continue
			}
			send()
		case <-back:
			back = nil
			send()
		case <-pause:
			pause = nil
			send()
		case <-hedge.C:
			if inFlight > 0 && back == nil && pause == nil && budget.spend(true) {
				send()
				hedge.Reset(delay)
			}
		case <-ctx.Done():
			return nil, status.AsError(ctx.Err()).WithDetails(map[string]any{wire.DetailReason: wire.ReasonOutcomeUnknown})
		}
	}
}

// natsReturnPause is how long a request that lost its answer to a
// dropped connection waits, once the connection is back, before it asks
// again for an instance that has not reconnected yet (within its
// deadline, and maxMoves times at most).
const natsReturnPause = 100 * time.Millisecond

// resendable says whether a copy that failed with err may be sent again:
// its connection dropped (before or after it was sent), or no instance
// took it after an earlier copy's connection dropped.
func (l *natsLink) resendable(err, lost *status.Error) bool {
	if errors.Is(err, natsconn.ErrDropped) {
		return true
	}
	return lost != nil && errors.Is(lost, natsconn.ErrDropped) && err.Reason() == wire.ReasonNoReadyInstance
}

// worstOf is err, unless an earlier copy may have run and err is
// UNAVAILABLE for another reason (no instance left, the connection still
// down): the caller is then told the outcome is unknown.
func worstOf(lost, err *status.Error) *status.Error {
	if lost != nil && err.Code == status.CodeUnavailable {
		return lost
	}
	return err
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
	up, _ := l.conn.Up()
	if up.Err() != nil {
		return nil, l.down()
	}
	// The attempt ends when the connection drops: the answer, if any,
	// went to a connection that is gone.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(up, cancel)()
	m, err := l.nc.RequestMsgWithContext(actx, msg)
	if err != nil {
		return nil, l.failed(ctx, up, err)
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

// down is the error of a request not sent because the connection to
// NATS is down: UNAVAILABLE, as when no instance is ready, with a hint to
// try again after the connection's reconnect wait.
func (l *natsLink) down() *status.Error {
	return status.Errorf(status.CodeUnavailable, "service %s has no ready instance", l.service).
		WithDetails(map[string]any{wire.DetailReason: wire.ReasonNoReadyInstance, wire.DetailRetryAfterMs: l.nc.Opts.ReconnectWait.Milliseconds()}).
		WithCause(natsconn.ErrDropped)
}

// failed is the error of a request NATS did not answer; up is the
// connection's stretch it was sent in (natsconn.Watcher.Up).
func (l *natsLink) failed(ctx, up context.Context, err error) *status.Error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		l.absent.Store(true)
		return l.noInstance(err)
	case ctx.Err() != nil:
		// It went out: the action may run (or have run) all the same.
		return status.AsError(ctx.Err()).WithDetails(map[string]any{wire.DetailReason: wire.ReasonOutcomeUnknown})
	case up.Err() != nil:
		return status.Errorf(status.CodeUnavailable, "the connection to service %s dropped before the answer", l.service).
			WithDetails(map[string]any{wire.DetailReason: wire.ReasonOutcomeUnknown}).WithCause(natsconn.ErrDropped)
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
	up, _ := l.conn.Up()
	if up.Err() != nil {
		return nil, l.down()
	}
	m, err := l.nc.RequestWithContext(ctx, subject, nil)
	if err != nil {
		return nil, l.failed(ctx, up, err)
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
