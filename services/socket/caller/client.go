package caller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/protobuf/proto"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/internal/workers"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/status"
)

// Client is the request library: it keeps a stream open to every instance
// of a service and spreads requests over them by least in-flight. It is
// safe for concurrent use.
type Client struct {
	target    string
	cfg       config
	born      time.Time       // when Dial returned the client
	ctx       context.Context // ends when the client closes
	cancel    context.CancelFunc
	wg        sync.WaitGroup // instance loops, streams, the resolver ticker
	closeOnce sync.Once
	res       atomic.Pointer[resolver.Resolver] // nil for a fixed list of instances

	mu         sync.Mutex // guards instances, changed, resolveErr
	instances  map[string]*instance
	changed    chan struct{} // closed (and replaced) when an instance changes state
	resolveErr error

	picks     atomic.Pointer[[]*instance]           // instances, for the request path
	catalogue atomic.Pointer[map[string]ActionInfo] // what Describe says of actions
	learned   atomic.Bool                           // a Describe answered
	described atomic.Pointer[string]                // the service's name, from Describe
	flights   coalesce.Group                        // identical reads in flight
	flightsGo *workers.Pool[func()]                 // runs the flights' shared work
	rotate    atomic.Uint32                         // spreads ties between instances
	coalesced atomic.Uint64                         // requests answered by an identical one in flight
	tracer    trace.Tracer                          // the global provider's (see trace.go)
	events    clientEvents                          // subscriptions (client_events.go)
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

// Dial returns a client for the service at target (see package doc for the
// forms). It connects in the background; requests wait for a ready stream
// until their context ends.
func Dial(target string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxAttempts < 1 || cfg.connectTimeout <= 0 || cfg.backoffBase <= 0 || cfg.backoffMax < cfg.backoffBase || cfg.readyWait < 0 {
		return nil, errors.New("socket: attempts, timeouts, backoff and ready wait must be positive")
	}
	t, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		target:    target,
		cfg:       cfg,
		born:      time.Now(),
		ctx:       ctx,
		cancel:    cancel,
		instances: map[string]*instance{},
		changed:   make(chan struct{}),
		tracer:    wire.Tracer(),
	}
	c.flightsGo = workers.New(func(f *func()) { (*f)() }, ctx.Done())
	c.flights.Go = c.flightsGo.Go
	c.picks.Store(&[]*instance{})
	c.catalogue.Store(&map[string]ActionInfo{})
	if t.static != nil {
		c.setAddrs(t.static)
		return c, nil
	}
	rc := resolverConn{update: c.setAddrs, report: c.setResolveErr}
	// Build may report addresses (and start instances) before it returns.
	res, err := t.builder.Build(resolver.Target{URL: t.url}, rc, resolver.BuildOptions{DisableServiceConfig: true})
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("socket: resolve %q: %w", target, err)
	}
	c.res.Store(&res)
	c.wg.Add(1)
	go c.reresolve()
	return c, nil
}

// Close ends every stream, failing requests still in flight with
// UNAVAILABLE, and waits for the client's goroutines.
func (c *Client) Close() error {
	c.closeOnce.Do(c.close)
	return nil
}

func (c *Client) close() {
	c.cancel()
	c.mu.Lock()
	for _, inst := range c.instances {
		inst.stop()
	}
	c.mu.Unlock()
	if res := c.res.Load(); res != nil {
		(*res).Close()
	}
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
	seen := map[connectivity.State]bool{}
	for _, s := range c.snapshots() {
		seen[s.State] = true
	}
	for _, s := range []connectivity.State{connectivity.Ready, connectivity.Connecting, connectivity.TransientFailure} {
		if seen[s] {
			return s
		}
	}
	return connectivity.Idle
}

// snapshots returns the state of every instance the target resolved to.
func (c *Client) snapshots() []instanceState {
	var out []instanceState
	for _, inst := range *c.picks.Load() {
		out = append(out, inst.snapshot())
	}
	return out
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
	if !known || !c.learned.Load() {
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
	res, err, shared := c.flights.Do(ctx, coalesce.Key(action, id, raw, m.APIVersion, scope, m.ReadEpoch), func(wctx context.Context) (json.RawMessage, error) {
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
	deadline, hasDeadline := ctx.Deadline()
	meta := wire.InjectTrace(ctx, metaToProto(ctx))
	// Each attempt gets a frame of its own, with the time left then.
	frame := func() *socketv1.Request {
		f := &socketv1.Request{
			Action:     action,
			ResourceId: id,
			Payload:    &socketv1.Request_BodyRaw{BodyRaw: raw},
			Meta:       meta,
		}
		if hasDeadline {
			left := max(time.Until(deadline), time.Millisecond)
			f.TimeoutMs = uint32(min((left+time.Millisecond-1)/time.Millisecond, 1<<32-1))
		}
		return f
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
		st, err := c.pick(ctx, last)
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
	if proto.Size(pm) == 0 {
		return nil // no meta in ctx: the frame carries none
	}
	return pm
}

func retryDraining(r *socketv1.Response) bool {
	e := r.GetError()
	return e.GetCode() == string(status.CodeUnavailable) && e.GetDetails().GetFields()[wire.DetailReason].GetStringValue() == wire.ReasonDraining
}

// ActionInfo is what the client knows of an action from the services'
// Describe catalogues.
type ActionInfo struct {
	// Read actions change nothing: they may be retried, coalesced and cached.
	Read bool
	// Idempotent actions may be sent twice.
	Idempotent bool
	// Public reads answer every caller alike.
	Public bool
	// CacheTTL is how long a read's result may be cached; 0 means not.
	CacheTTL time.Duration
	// Versions are the API versions the action supports; none means all.
	Versions []string
	// Doc is the action's documentation.
	Doc string
}

// Action returns what the client knows of an action; ok is false before
// any instance described it.
func (c *Client) Action(name string) (info ActionInfo, ok bool) {
	info, ok = (*c.catalogue.Load())[name]
	return info, ok
}

// awaitAction is Action for an action the client knows nothing of yet, or
// before any Describe answered: it waits for a ready stream and for that
// stream's Describe (see clientStream.describe), within ctx. Its error is
// pick's.
func (c *Client) awaitAction(ctx context.Context, action string) (ActionInfo, error) {
	st, err := c.pick(ctx, nil)
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

// learn records a Describe catalogue.
func (c *Client) learn(d *socketv1.DescribeResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[string]ActionInfo{}
	for a, v := range *c.catalogue.Load() {
		next[a] = v
	}
	for _, a := range d.GetActions() {
		info := next[a.GetName()]
		info.Read = a.GetKind() == socketv1.ActionKind_ACTION_KIND_READ
		info.Idempotent = info.Idempotent || a.GetIdempotent()
		info.Public = a.GetPublic()
		info.CacheTTL = a.GetCacheTtl().AsDuration()
		info.Versions = a.GetVersions()
		info.Doc = a.GetDoc()
		next[a.GetName()] = info
	}
	c.catalogue.Store(&next)
	c.learned.Store(true)
	if name := d.GetService(); name != "" {
		c.described.Store(&name)
	}
}

// service returns the name of the service the client calls:
// WithServiceName's, else Describe's, else "".
func (c *Client) service() string {
	if c.cfg.service != "" {
		return c.cfg.service
	}
	if n := c.described.Load(); n != nil {
		return *n
	}
	return ""
}

// serviceName names the service in messages.
func (c *Client) serviceName() string {
	if s := c.service(); s != "" {
		return "service " + s
	}
	return "the service"
}

// pick returns the ready stream with the fewest requests in flight,
// avoiding the instance of a failed attempt when another is ready. With no
// ready stream it waits while an instance's first connection attempt is
// under way, and otherwise at most WithReadyWait, then fails with
// UNAVAILABLE (reason no_ready_instance); never longer than ctx allows.
func (c *Client) pick(ctx context.Context, avoid *instance) (*clientStream, error) {
	var since time.Time // when this request first found no ready stream
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		// Take the change signal before looking, so a stream that becomes
		// ready meanwhile wakes us.
		c.mu.Lock()
		changed := c.changed
		c.mu.Unlock()
		insts := *c.picks.Load()
		var best *clientStream
		n := len(insts)
		start := 0
		if n > 1 {
			start = int(c.rotate.Add(1)) % n
		}
		for pass := 0; pass < 2 && best == nil; pass++ {
			for i := range n {
				inst := insts[(start+i)%n]
				if pass == 0 && inst == avoid {
					continue
				}
				st := inst.cur.Load()
				if st == nil || !st.usable() {
					continue
				}
				if best == nil || st.inFlight.Load() < best.inFlight.Load() {
					best = st
				}
			}
		}
		if best != nil {
			return best, nil
		}
		if err := c.permanentError(); err != nil {
			return nil, err
		}
		if c.ctx.Err() != nil {
			return nil, errClientClosed
		}
		now := time.Now()
		if since.IsZero() {
			since = now
		}
		until, retryAfter := c.readyBy(insts, since, now)
		if !now.Before(until) {
			return nil, c.noReadyInstance(retryAfter)
		}
		if timer == nil {
			timer = time.NewTimer(until.Sub(now))
		} else {
			timer.Reset(until.Sub(now))
		}
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			// The cause (addresses, transport errors) is kept for logs and
			// errors.Is, not put in the message that may reach clients.
			e := status.AsError(ctx.Err())
			return nil, (&status.Error{Code: e.Code, Message: e.Message + ": " + c.serviceName() + " has no ready instance"}).WithCause(errors.Join(ctx.Err(), c.lastError()))
		case <-c.ctx.Done():
			return nil, errClientClosed
		}
	}
}

// readyBy says until when a request that found no ready stream at since
// may wait for one: while an instance's first attempt is under way (or,
// before the target resolved to any address, within the connect timeout
// after Dial), as long as that takes; while a reconnect is under way or
// due within WithReadyWait, for WithReadyWait; not at all when every
// instance waits out a longer backoff. It also returns the retry hint: the
// time until the next reconnect attempt.
func (c *Client) readyBy(insts []*instance, since, now time.Time) (until time.Time, retryAfter time.Duration) {
	until = since
	retryAfter = c.cfg.backoffMax
	soon := since.Add(c.cfg.readyWait)
	if len(insts) == 0 {
		c.mu.Lock()
		resolveErr := c.resolveErr
		c.mu.Unlock()
		if resolveErr == nil {
			until = later(soon, c.born.Add(c.cfg.connectTimeout))
		}
	}
	for _, inst := range insts {
		first, state, retryAt := inst.readiness()
		switch {
		case first:
			// The attempt ends by the connect timeout and wakes us.
			until = later(until, now.Add(c.cfg.connectTimeout))
			retryAfter = 0
		case state == connectivity.TransientFailure:
			retryAfter = min(retryAfter, retryAt.Sub(now))
			if retryAt.Before(soon) {
				until = later(until, soon) // a reconnect is due meanwhile
			}
		default: // connecting again: the next attempt is now
			retryAfter = 0
			until = later(until, soon)
		}
	}
	floor := 100 * time.Millisecond
	return until, min(max(retryAfter, floor), max(c.cfg.backoffMax, floor))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// noReadyInstance is the error of a request that found no ready stream.
func (c *Client) noReadyInstance(retryAfter time.Duration) *status.Error {
	return status.Errorf(status.CodeUnavailable, "%s has no ready instance", c.serviceName()).
		WithDetails(map[string]any{wire.DetailReason: wire.ReasonNoReadyInstance, wire.DetailRetryAfterMs: retryAfter.Milliseconds()}).
		WithCause(c.lastError())
}

// permanentError returns an error that waiting will not cure: every
// instance refused the key.
func (c *Client) permanentError() error {
	insts := c.snapshots()
	if len(insts) == 0 {
		return nil
	}
	var err error
	for _, s := range insts {
		code := status.CodeOf(s.LastError)
		if s.State == connectivity.Ready || (code != status.CodeUnauthenticated && code != status.CodePermissionDenied) {
			return nil
		}
		err = s.LastError
	}
	return err
}

func (c *Client) lastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, inst := range c.instances {
		if s := inst.snapshot(); s.LastError != nil {
			return s.LastError
		}
	}
	return c.resolveErr
}

// notifyChange wakes requests waiting for a stream, to look again.
func (c *Client) notifyChange() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// setAddrs starts instances for new addresses and retires those gone.
func (c *Client) setAddrs(addrs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return
	}
	if len(addrs) == 0 {
		// An empty answer is more likely a resolver hiccup than a service
		// with no instances: keep what we have.
		return
	}
	want := map[string]bool{}
	for _, a := range addrs {
		want[a] = true
		if c.instances[a] == nil {
			inst, err := c.newInstance(a)
			if err != nil {
				c.resolveErr = err
				continue
			}
			c.instances[a] = inst
		}
	}
	for a, inst := range c.instances {
		if !want[a] {
			delete(c.instances, a)
			inst.stop()
		}
	}
	list := make([]*instance, 0, len(c.instances))
	for _, inst := range c.instances {
		list = append(list, inst)
	}
	c.picks.Store(&list)
	c.resolveErr = nil
}

func (c *Client) setResolveErr(err error) {
	c.mu.Lock()
	c.resolveErr = err
	c.mu.Unlock()
	c.notifyChange()
}

// reresolve asks the resolver for fresh addresses from time to time, so
// new instances are found.
func (c *Client) reresolve() {
	defer c.wg.Done()
	t := time.NewTicker(resolveInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.resolveNow()
		case <-c.ctx.Done():
			return
		}
	}
}

// backoff returns the delay before reconnect attempt n (from 0): doubling
// from the base, with ±20% jitter, never above the cap.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.backoffBase << min(n, 20)
	if d > c.cfg.backoffMax || d <= 0 {
		d = c.cfg.backoffMax
	}
	return min(time.Duration(float64(d)*(0.8+0.4*rand.Float64())), c.cfg.backoffMax)
}

// outgoingContext attaches the client's key to a call's context.
func (c *Client) outgoingContext(ctx context.Context) context.Context {
	if c.cfg.key == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, wire.MetadataAuthorization, "Bearer "+c.cfg.key)
}

func (c *Client) dialOptions() []grpc.DialOption {
	return append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.cfg.maxFrame), grpc.MaxCallSendMsgSize(c.cfg.maxFrame)),
		// The instance loop drives reconnection (a fresh connection per
		// attempt after a failure); gRPC's own backoff is bounded by ours
		// all the same, and one attempt by the connect timeout.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: c.cfg.backoffBase, Multiplier: 2, MaxDelay: c.cfg.backoffMax},
			MinConnectTimeout: c.cfg.connectTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: wire.KeepaliveTime, Timeout: wire.KeepaliveTimeout, PermitWithoutStream: true}),
	}, c.cfg.grpcOptions...)
}

// Describe asks one ready instance for the service's action catalogue,
// waiting for one until ctx ends, and returns it by action name; Action
// answers from it afterwards.
func (c *Client) Describe(ctx context.Context) (map[string]ActionInfo, error) {
	st, err := c.pick(ctx, nil)
	if err != nil {
		return nil, err
	}
	d, err := st.conn.stub.Describe(c.outgoingContext(ctx), &socketv1.DescribeRequest{})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	c.learn(d)
	known := *c.catalogue.Load()
	out := make(map[string]ActionInfo, len(d.GetActions()))
	for _, a := range d.GetActions() {
		out[a.GetName()] = known[a.GetName()]
	}
	return out, nil
}
