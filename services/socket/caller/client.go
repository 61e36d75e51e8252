package caller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/internal/workers"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/internal/target"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/status"
)

// Client is the request library: it keeps a stream open to every instance
// of a service and spreads requests over them by least in-flight. It is
// safe for concurrent use. Its parts: the instances and the choice of a
// stream (pool), what the service's Describe says of its actions
// (catalogue), the subscriptions (events) and the identical reads in
// flight (flights).
type Client struct {
	cfg       config
	ctx       context.Context // ends when the client closes
	cancel    context.CancelFunc
	wg        sync.WaitGroup // instance loops, streams, the resolver ticker, subscriptions
	closeOnce sync.Once

	pool      pool                  // the instances (pool.go, pick.go)
	catalogue catalogue             // what Describe says of actions (catalogue.go)
	events    clientEvents          // subscriptions (events.go)
	flights   coalesce.Group        // identical reads in flight
	flightsGo *workers.Pool[func()] // runs the flights' shared work
	coalesced atomic.Uint64         // requests answered by an identical one in flight
	tracer    trace.Tracer          // the global provider's (see trace.go)
	nats      *natsLink             // WithNATS's carrier, in place of the pool's streams
}

// instanceState is what the client knows about one instance.
type instanceState struct {
	// Addr is the instance's address.
	Addr string
	// State is Ready while a stream is open, Connecting while one is
	// being opened, TransientFailure between failed attempts.
	State connectivity.State
	// InFlight is the number of requests waiting for an answer.
	InFlight int
	// LastError is why the last stream failed or ended, if it did.
	LastError error
	// Failures counts the failed attempts to open a stream since the last
	// ready one.
	Failures int
}

// Dial returns a client for the service at dialTarget (see package doc for the
// forms). It connects in the background; requests wait for a ready stream
// until their context ends.
func Dial(dialTarget string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxAttempts < 1 || cfg.connectTimeout <= 0 || cfg.backoffBase <= 0 || cfg.backoffMax < cfg.backoffBase || cfg.readyWait < 0 {
		return nil, errors.New("socket: attempts, timeouts, backoff and ready wait must be positive")
	}
	if cfg.nats != nil {
		return dialNATS(dialTarget, cfg)
	}
	t, err := target.Parse(dialTarget)
	if err != nil {
		return nil, err
	}
	c := newClient(dialTarget, cfg)
	if t.Static != nil {
		c.pool.setAddrs(t.Static)
		return c, nil
	}
	rc := target.Conn{Update: c.pool.setAddrs, Report: c.pool.setResolveErr}
	// Build may report addresses (and start instances) before it returns.
	res, err := t.Builder.Build(resolver.Target{URL: t.URL}, rc, resolver.BuildOptions{DisableServiceConfig: true})
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("socket: resolve %q: %w", dialTarget, err)
	}
	c.pool.res.Store(&res)
	c.wg.Add(1)
	go c.pool.reresolve()
	return c, nil
}

// newClient returns a client for target with no instances yet.
func newClient(target string, cfg config) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{cfg: cfg, ctx: ctx, cancel: cancel, tracer: wire.Tracer()}
	c.pool = pool{c: c, target: target, born: time.Now(), instances: map[string]*instance{}, changed: make(chan struct{})}
	c.pool.picks.Store(&[]*instance{})
	c.catalogue.named = cfg.service
	c.catalogue.infos.Store(&map[string]ActionInfo{})
	c.events = clientEvents{ctx: ctx, wg: &c.wg, pool: &c.pool, connectTimeout: cfg.connectTimeout}
	c.flightsGo = workers.New(func(f *func()) { (*f)() }, ctx.Done())
	c.flights.Go = c.flightsGo.Go
	return c
}

// Close ends every stream, failing requests still in flight with
// UNAVAILABLE, and waits for the client's goroutines.
func (c *Client) Close() error {
	c.closeOnce.Do(c.close)
	return nil
}

func (c *Client) close() {
	c.cancel()
	c.pool.stop()
	c.wg.Wait()
	c.flightsGo.Wait()
}

// State sums up the instances: Ready when any stream is ready, Connecting
// when one is being opened, TransientFailure when all are failing, Idle
// before any instance is known, Shutdown once closed.
func (c *Client) State() connectivity.State {
	if c.ctx.Err() != nil {
		return connectivity.Shutdown
	}
	if c.nats != nil {
		return c.nats.state()
	}
	seen := map[connectivity.State]bool{}
	for _, s := range c.pool.snapshots() {
		seen[s.State] = true
	}
	for _, s := range []connectivity.State{connectivity.Ready, connectivity.Connecting, connectivity.TransientFailure} {
		if seen[s] {
			return s
		}
	}
	return connectivity.Idle
}

// Reply is a request's answer as Do returns it.
type Reply struct {
	// Result is the action's JSON result.
	Result json.RawMessage
	// Replayed says the service answered with the stored outcome of an
	// earlier request with the same idempotency key (see socket.MarkReplayed): it
	// did not act again, so the caller did not create what the result
	// names and must not undo it. Always false for reads answered by an
	// identical read in flight.
	Replayed bool
}

// Request runs an action on the service and returns its JSON result. The
// body may be nil, raw JSON ([]byte or json.RawMessage, sent untouched) or
// any value to encode as JSON. The context's deadline travels with the
// request and its meta is taken from ContextWithMeta; cancelling ctx
// cancels the request at the service. Errors are *status.Error.
//
// When a stream breaks, requests that never reached it are sent again
// elsewhere; requests that did are sent again only if the action is
// idempotent (per Describe). Writes are never sent twice.
// With no ready instance, a request fails at once with UNAVAILABLE (reason
// "no_ready_instance"; see WithReadyWait).
//
// Identical reads (per Describe) in flight at the same moment, with the
// same API version and principal (any principal for Public actions),
// share one request; see WithoutCoalescing.
func (c *Client) Request(ctx context.Context, action, id string, body any) (json.RawMessage, error) {
	r, err := c.Do(ctx, action, id, body)
	return r.Result, err
}

// Do is Request with the whole answer: the result and whether the service
// replayed a stored outcome instead of acting (Reply.Replayed). On an
// error, Reply.Replayed still says whether the error is a stored outcome.
func (c *Client) Do(ctx context.Context, action, id string, body any) (Reply, error) {
	ctx, span := c.startCall(ctx, action, id)
	r, err := c.do(ctx, action, id, body)
	wire.EndSpan(span, err, trace.SpanKindClient)
	return r, err
}

// do is Do inside the call's span.
func (c *Client) do(ctx context.Context, action, id string, body any) (Reply, error) {
	raw, err := wire.EncodeBody(body)
	if err != nil {
		return Reply{}, err
	}
	info, known := c.Action(action)
	if !known || !c.catalogue.learned.Load() {
		if info, err = c.awaitAction(ctx, action); err != nil {
			return Reply{}, err
		}
	}
	if !info.Read || c.cfg.noCoalesce {
		return c.send(ctx, action, id, raw, info)
	}
	m := socket.MetaFrom(ctx)
	scope := ""
	if !info.Public {
		scope = coalesce.Scope(m.Principal.Subject, m.Principal.Roles)
	}
	deadline, hasDeadline := ctx.Deadline()
	res, err, shared := c.flights.Do(ctx, coalesce.Key(action, id, raw, m.APIVersion, scope, m.ReadEpoch), func(wctx context.Context) (json.RawMessage, error) {
		if c.nats != nil && hasDeadline {
			// NATS carries no cancellation, only the deadline: the
			// shared request keeps the first caller's.
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(wctx, deadline)
			defer cancel()
		}
		r, err := c.send(wctx, action, id, raw, info)
		return r.Result, err
	})
	if shared {
		c.coalesced.Add(1)
		markCoalesced(ctx)
	}
	if err != nil {
		return Reply{}, status.AsError(err)
	}
	return Reply{Result: res}, nil
}

// send sends one request, moving it to other streams when streams break
// or drain under it (see Request).
func (c *Client) send(ctx context.Context, action, id string, raw []byte, info ActionInfo) (Reply, error) {
	frame := newFrame(ctx, action, id, raw)
	if c.nats != nil {
		return c.natsSend(ctx, action, frame, info)
	}
	budget := c.retryBudget(info)
	var last *instance
	// mayHaveRun is the loss of an attempt that may have reached the
	// service. Once there is one, a later failure that is not the
	// service's own answer (no instance left, a stream closing) must not
	// hide it: the caller is told the outcome is unknown.
	var mayHaveRun error
	failed := func(err error) (Reply, error) {
		if mayHaveRun != nil && status.AsError(err).Code == status.CodeUnavailable {
			err = mayHaveRun
		}
		return Reply{}, status.AsError(err)
	}
	for {
		st, err := c.pool.pick(ctx, last)
		if err != nil {
			return failed(err)
		}
		last = st.inst
		r, err := st.do(ctx, frame())
		if err == nil {
			if retryDraining(r) && budget.spend(false) {
				continue // the service refused it unrun while draining
			}
			res, err := wire.Result(r)
			return Reply{Result: res, Replayed: r.GetReplayed()}, err
		}
		var lost *lostError
		if errors.As(err, &lost) && lost.sent {
			mayHaveRun = err
		}
		if lost == nil || !budget.spend(lost.sent) {
			return failed(err)
		}
	}
}

// newFrame returns the request frames of one request: each attempt gets a
// frame of its own, with the time left then as its timeout_ms.
func newFrame(ctx context.Context, action, id string, raw []byte) func() *socketv1.Request {
	deadline, hasDeadline := ctx.Deadline()
	meta := wire.InjectTrace(ctx, metaToProto(ctx))
	return func() *socketv1.Request {
		f := wire.RawRequest(action, id, raw, meta)
		if hasDeadline {
			left := max(time.Until(deadline), time.Millisecond)
			f.TimeoutMs = uint32(min((left+time.Millisecond-1)/time.Millisecond, 1<<32-1))
		}
		return f
	}
}

var (
	errClientClosed  = status.Errorf(status.CodeUnavailable, "the client is closed")
	errStreamClosing = status.Errorf(status.CodeUnavailable, "the stream to the service is closing")
)

// maxMoves bounds how often one request is tried again because streams
// break or drain under it.
const maxMoves = 16

// retryBudget is what one request may spend on being tried again (see
// Request): every retry spends a move, maxMoves in all; a retry after the
// request may have reached the service also spends a send, and only
// idempotent actions have more than one (WithMaxAttempts).
type retryBudget struct {
	moves int // retries left
	sends int // sends left that may reach the service
}

func (c *Client) retryBudget(info ActionInfo) retryBudget {
	b := retryBudget{moves: maxMoves, sends: 1}
	if info.Idempotent {
		b.sends = c.cfg.maxAttempts
	}
	return b
}

// spend reports whether the request may be tried again after an attempt
// that failed; sent says the attempt may have reached the service.
func (b *retryBudget) spend(sent bool) bool {
	if sent {
		if b.sends--; b.sends <= 0 {
			return false
		}
	}
	b.moves--
	return b.moves >= 0
}

// Call is Request with a typed result: the JSON result is decoded into Out.
func Call[Out any](ctx context.Context, c *Client, action, id string, body any) (Out, error) {
	var out Out
	raw, err := c.Request(ctx, action, id, body)
	if err != nil {
		return out, err
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return out, status.Errorf(status.CodeInternal, "the result of %s could not be decoded", action).WithCause(err)
		}
	}
	return out, nil
}

func metaToProto(ctx context.Context) *socketv1.Meta {
	m := socket.MetaFrom(ctx)
	pm := &socketv1.Meta{
		ApiVersion:     m.APIVersion,
		Traceparent:    m.TraceParent,
		Tracestate:     m.TraceState,
		IdempotencyKey: m.IdempotencyKey,
		RequestId:      m.RequestID,
		ReadEpoch:      m.ReadEpoch,
	}
	// The principal is forwarded only when it is someone other than the
	// caller itself, which is what the service assumes without it.
	if m.Principal.Subject != "" && m.Principal.Subject != m.Caller {
		pm.Principal = &socketv1.Principal{Subject: m.Principal.Subject, Roles: m.Principal.Roles}
	}
	if pm.Principal == nil && pm.ApiVersion == "" && pm.Traceparent == "" && pm.Tracestate == "" && pm.IdempotencyKey == "" && pm.RequestId == "" && pm.ReadEpoch == "" {
		return nil // no meta in ctx: the frame carries none
	}
	return pm
}

func retryDraining(r *socketv1.Response) bool {
	e := r.GetError()
	return e.GetCode() == string(status.CodeUnavailable) && e.GetDetails().GetFields()[wire.DetailReason].GetStringValue() == wire.ReasonDraining
}

// Action returns what the client knows of an action; ok is false before
// any instance described it.
func (c *Client) Action(name string) (info ActionInfo, ok bool) {
	return c.catalogue.action(name)
}

// awaitAction is Action for an action the client knows nothing of yet, or
// before any Describe answered: it waits for a ready stream and for that
// stream's Describe (see clientStream.describe), within ctx. Its error is
// pick's.
func (c *Client) awaitAction(ctx context.Context, action string) (ActionInfo, error) {
	if c.nats != nil {
		if _, err := c.natsDescribe(ctx); err != nil {
			return ActionInfo{}, err
		}
		info, _ := c.Action(action)
		return info, nil
	}
	st, err := c.pool.pick(ctx, nil)
	if err != nil {
		return ActionInfo{}, err
	}
	select {
	case <-st.described:
	case <-ctx.Done(): // the request fails on its own
	}
	info, _ := c.Action(action)
	return info, nil
}

// Describe asks one ready instance for the service's action catalogue,
// waiting for one until ctx ends, and returns it by action name; Action
// answers from it afterwards.
func (c *Client) Describe(ctx context.Context) (map[string]ActionInfo, error) {
	d, err := c.describe(ctx)
	if err != nil {
		return nil, err
	}
	known := *c.catalogue.infos.Load()
	out := make(map[string]ActionInfo, len(d.GetActions()))
	for _, a := range d.GetActions() {
		out[a.GetName()] = known[a.GetName()]
	}
	return out, nil
}

// describe asks for the catalogue over the client's carrier and learns it.
func (c *Client) describe(ctx context.Context) (*socketv1.DescribeResponse, error) {
	if c.nats != nil {
		return c.natsDescribe(ctx)
	}
	st, err := c.pool.pick(ctx, nil)
	if err != nil {
		return nil, err
	}
	d, err := st.conn.stub.Describe(c.cfg.outgoingContext(ctx), &socketv1.DescribeRequest{})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	c.catalogue.learn(d)
	return d, nil
}
