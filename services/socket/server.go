package socket

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/internal/workers"
	"github.com/streamgate/streamgate/services/socket/internal/carrier"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

// Config is a server's identity.
type Config struct {
	// Name is the service's name, e.g. "users". Required.
	Name string
	// Version is the service's build version, shown by Describe.
	Version string
}

// Server serves registered actions over the socket protocol, with the gRPC
// health service and server reflection beside it.
type Server struct {
	cfg      Config
	opts     serverConfig
	instance string
	grpc     *grpc.Server
	health   *health.Server

	mu       sync.Mutex // guards actions until serving, streams, serving, draining
	actions  map[string]*action
	streams  map[*serverStream]struct{}
	serving  bool
	draining bool
	idle     chan struct{} // closed when draining and the last stream ended

	inFlight atomic.Int64        // requests running on the whole server
	flights  *coalesce.Group     // identical reads in flight, across streams
	workers  *workers.Pool[task] // runs admitted requests
	hardStop chan struct{}       // closed when every stream must end now
	// stopped ends with hardStop: writes, which outlive their callers'
	// streams, end with it.
	stopped  context.Context
	stopWork context.CancelFunc
	stopOnce sync.Once
	streamWG sync.WaitGroup  // Connect calls and their goroutines
	obs      serverObservers // told the server's events (observe.go)
	events   serverEvents    // subscriptions and topic seqs (events.go)
}

// action is one registered action.
type action struct {
	name     string
	handler  Handler
	spec     actionSpec
	versions map[string]bool // nil means all
	stats    actionStats     // kept by statsObserver
	observed []any           // what each observer keeps for the action, by its index
}

var actionName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)

// NewServer returns a server with no actions. It needs WithKeys or
// WithoutAuth.
func NewServer(cfg Config, opts ...ServerOption) (*Server, error) {
	c := defaultServerConfig()
	for _, o := range opts {
		o.applyServer(&c)
	}
	switch {
	case cfg.Name == "":
		return nil, errors.New("socket: Config.Name is required")
	case c.keys == nil && !c.noAuth:
		return nil, errors.New("socket: no keys: use WithKeys, or WithoutAuth for local use")
	case c.streamInFlight < 1 || c.serverInFlight < 1:
		return nil, errors.New("socket: WithMaxInFlight bounds must be positive")
	case c.maxBody < 0 || c.maxFrame < 1:
		return nil, errors.New("socket: size limits must be positive")
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	s := &Server{
		cfg:      cfg,
		opts:     c,
		instance: cfg.Name + "-" + hex.EncodeToString(id[:]),
		health:   health.NewServer(),
		actions:  map[string]*action{},
		streams:  map[*serverStream]struct{}{},
		idle:     make(chan struct{}),
		hardStop: make(chan struct{}),
		flights:  c.flights,
	}
	if s.flights == nil {
		s.flights = &coalesce.Group{}
	}
	s.workers = workers.New(serveTask, s.hardStop)
	metrics, err := newServerMetrics(c.metrics, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("socket: WithMetrics: %w", err)
	}
	s.obs = serverObservers{statsObserver{}, serverTracer{tracer: wire.Tracer(), service: cfg.Name}}
	if metrics != nil {
		metrics.index = len(s.obs)
		s.obs = append(s.obs, metrics)
	}
	// A frame's goroutine may wait for the shared run: its caller already
	// has what it needs (a cancel frame, or a closed stream).
	s.flights.Inline = true
	s.stopped, s.stopWork = context.WithCancel(context.Background())
	// The codec is the last option: frames are encoded before they reach
	// gRPC (wire.Encode) and only wire.Codec sends them as they are.
	gopts := append([]grpc.ServerOption{grpc.MaxRecvMsgSize(c.maxFrame), grpc.MaxSendMsgSize(c.maxFrame), serverKeepalive()}, c.grpcOptions...)
	gopts = append(gopts, grpc.ForceServerCodecV2(wire.Codec{}))
	s.grpc = grpc.NewServer(gopts...)
	socketv1.RegisterSocketServiceServer(s.grpc, grpcService{s: s})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(socketv1.SocketService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	return s, nil
}

// Handle registers an action under a name in UPPER_SNAKE_CASE. Actions are
// writes unless declared Read. Register every action before Serve.
func (s *Server) Handle(name string, h Handler, opts ...ActionOption) error {
	if !actionName.MatchString(name) {
		return fmt.Errorf("socket: action name %q: want UPPER_SNAKE_CASE", name)
	}
	if h == nil {
		return fmt.Errorf("socket: action %s: nil handler", name)
	}
	a := &action{name: name, handler: h}
	for _, o := range opts {
		o(&a.spec)
	}
	if a.spec.cacheTTL < 0 || a.spec.timeout < 0 {
		return fmt.Errorf("socket: action %s: negative duration", name)
	}
	if a.spec.cacheTTL > 0 && !a.spec.read {
		return fmt.Errorf("socket: action %s: only reads may be cached", name)
	}
	if len(a.spec.versions) > 0 {
		a.versions = map[string]bool{}
		for _, v := range a.spec.versions {
			a.versions[v] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving {
		return fmt.Errorf("socket: action %s: register actions before Serve", name)
	}
	if _, dup := s.actions[name]; dup {
		return fmt.Errorf("socket: action %s registered twice", name)
	}
	s.obs.register(a)
	s.actions[name] = a
	return nil
}

// Serve serves on lis until ctx is cancelled, then drains: it sends a drain
// frame on every stream, answers what is in flight (bounded by
// WithDrainTimeout), and returns nil. It returns early with the error if
// lis fails. A server serves once.
//
// A listener from a transport package (natsserve) carries requests over
// that transport too, or instead of the gRPC stream: see its doc.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("socket: Serve called twice")
	}
	s.serving = true
	s.mu.Unlock()

	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(socketv1.SocketService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	cl, _ := lis.(carrier.Listener)
	if cl != nil {
		lis = cl.Stream()
	}
	served := make(chan error, 1)
	if lis != nil {
		go func() { served <- s.grpc.Serve(lis) }()
	}
	t := s.carry(ctx, cl)
	// Stop ends grpc.Serve; with no stream, Serve waits for Stop itself.
	var stopped <-chan struct{}
	if lis == nil {
		stopped = s.hardStop
	}
	select {
	case err := <-served:
		t.stop()
		s.Stop()
		if errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return err
	case err := <-t.failed:
		s.Stop()
		return err
	case <-stopped:
		t.stop()
		return nil
	case <-ctx.Done():
	}
	s.drain(t.done)
	t.stop()
	if lis == nil {
		return nil
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// carrying is a transport's Carry running beside the gRPC stream.
type carrying struct {
	failed chan error    // the transport's error, if it failed early
	done   chan struct{} // closed when Carry returned
	cancel context.CancelFunc
}

// carry starts cl's Carry with the server's frames; with no cl, the
// carrying never fails and stops at once.
func (s *Server) carry(ctx context.Context, cl carrier.Listener) *carrying {
	t := &carrying{failed: make(chan error, 1), done: make(chan struct{}), cancel: func() {}}
	if cl == nil {
		close(t.done)
		return t
	}
	cctx, cancel := context.WithCancel(ctx)
	t.cancel = cancel
	go func() {
		defer close(t.done)
		if err := cl.Carry(cctx, &carried{s: s, known: map[string]*keyring.Entry{}}); err != nil && cctx.Err() == nil {
			t.failed <- err
		}
	}()
	return t
}

// stop ends the transport (it drains what is in flight) and waits for it.
func (t *carrying) stop() {
	t.cancel()
	<-t.done
}

// drain is the graceful shutdown that Serve runs when its context ends;
// carried is closed once a transport beside the stream drained (its
// context ended with Serve's).
func (s *Server) drain(carried <-chan struct{}) {
	deadline := time.Now().Add(s.opts.drainTimeout)
	s.health.Shutdown()
	s.mu.Lock()
	s.draining = true
	streams := make([]*serverStream, 0, len(s.streams))
	for st := range s.streams {
		streams = append(streams, st)
	}
	if len(s.streams) == 0 {
		close(s.idle)
	}
	s.mu.Unlock()
	for _, st := range streams {
		st.drain()
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-s.idle:
	case <-timer.C:
		s.opts.logger.Warn("socket: drain timeout; cancelling requests still in flight", "service", s.cfg.Name)
	}
	select {
	case <-carried:
	case <-timer.C:
	}
	// Unary calls may still run; let grpc wait for them within the bound.
	// (Health watchers never end on their own, so this can take it all.)
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(max(time.Until(deadline), 0)):
	}
	s.Stop()
	<-stopped
}

// Stop ends every stream and connection at once, failing requests in
// flight. Prefer cancelling Serve's context, which drains gracefully.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		close(s.hardStop)
		s.mu.Unlock()
		s.health.Shutdown()
		s.grpc.Stop()
		// Writes outlive their streams, not the server: cancelled once the
		// connections are closed, so their answers go nowhere and callers
		// see the stream break.
		s.stopWork()
		s.streamWG.Wait()
		s.workers.Wait()
	})
}

// track adds a stream unless the server is draining.
func (s *Server) track(st *serverStream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.hardStop:
		return false
	default:
	}
	if s.draining {
		return false
	}
	s.streams[st] = struct{}{}
	s.streamWG.Add(1)
	s.obs.server(serverEvent{kind: streamChanged, n: 1})
	return true
}

func (s *Server) untrack(st *serverStream) {
	s.mu.Lock()
	delete(s.streams, st)
	s.obs.server(serverEvent{kind: streamChanged, n: -1})
	if s.draining && len(s.streams) == 0 {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
	s.mu.Unlock()
	s.streamWG.Done()
}

func (s *Server) authenticate(ctx context.Context) (*keyring.Entry, error) {
	if s.opts.noAuth {
		return keyring.Anonymous(), nil
	}
	k, err := lookup(ctx, s.opts.keys)
	if err != nil {
		s.obs.server(serverEvent{kind: keyRefused})
		msg := "unauthenticated"
		if se := (*status.Error)(nil); errors.As(err, &se) {
			msg = se.Message
		}
		return nil, grpcstatus.Error(codes.Unauthenticated, msg)
	}
	return k, nil
}

// acquire takes a server-wide in-flight slot.
func (s *Server) acquire() bool {
	if s.inFlight.Add(1) > int64(s.opts.serverInFlight) {
		s.inFlight.Add(-1)
		return false
	}
	s.obs.server(serverEvent{kind: runningChanged, n: 1})
	return true
}

// release frees the slot acquire took, once the answer is sent or queued.
func (s *Server) release() { s.inFlight.Add(-1) }

// ended takes a request off the in-flight gauge once its handler is done
// and before its answer goes out, so a caller that has its answer reads
// the gauge without it.
func (s *Server) ended() { s.obs.server(serverEvent{kind: runningChanged, n: -1}) }

var errServerBusy = Errorf(CodeResourceExhausted, "too many requests in flight on this server")

// handlerContext makes r's context the request's: its meta, and its
// deadline (the frame's, shortened by the action's Timeout), carried as a
// value: no timer is made unless the handler asks for Done (see
// deadline.Context). A write is not cancelled
// when its caller's stream or call ends: the caller cannot tell whether it
// ran, so it runs to its deadline (the drain timeout when it has none) and
// its outcome is recorded, for a retry with the same idempotency key to
// find. A cancel frame, or Stop, still cancels it.
func (s *Server) handlerContext(parent context.Context, adm *admitted, r *run) {
	adm.state = requestState{meta: &adm.req.Meta}
	timeout := time.Duration(adm.timeoutMs) * time.Millisecond
	if t := adm.action.spec.timeout; t > 0 && (timeout == 0 || t < timeout) {
		timeout = t
	}
	if adm.action.spec.read {
		var at time.Time
		if timeout > 0 {
			at = time.Now().Add(timeout)
		}
		r.meta.Init(parent, &adm.state)
		r.ctx.Init(&r.meta, at)
		return
	}
	if timeout == 0 {
		timeout = s.opts.drainTimeout
	}
	r.meta.Init(context.WithoutCancel(parent), &adm.state)
	r.ctx.Init(&r.meta, time.Now().Add(timeout))
	r.stopWatch = context.AfterFunc(s.stopped, r.ctx.Cancel)
}

// run runs an admitted request: reads share one handler run with
// identical reads in flight (across all streams), unless coalescing is off.
func (s *Server) run(ctx context.Context, adm *admitted) (json.RawMessage, *status.Error) {
	a := adm.action
	if !a.spec.read || s.opts.noCoalesce {
		return s.exec(ctx, adm)
	}
	scope := ""
	if !a.spec.public {
		scope = coalesce.Scope(adm.req.Meta.Principal.Subject, adm.req.Meta.Principal.Roles)
	}
	key := coalesce.Key(a.name, adm.req.ResourceID, adm.req.Body, adm.req.Meta.APIVersion, scope, adm.req.Meta.ReadEpoch)
	// The group is Inline (see NewServer): the shared run is on this
	// goroutine and Do returns only when it has ended, so it may use adm
	// without a copy even when this caller's own request ends first.
	res, err, shared := s.flights.Do(ctx, key, func(wctx context.Context) (json.RawMessage, error) {
		// The shared run answers many callers: it never marks a replay.
		wctx = wire.WithMeta(wctx, &adm.req.Meta)
		if t := a.spec.timeout; t > 0 {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(wctx, t)
			defer cancel()
		}
		res, e := s.exec(wctx, adm)
		return res, errOrNil(e)
	})
	if shared {
		s.obs.coalesced(a)
	}
	if err != nil && ctx.Err() != nil && status.AsError(err).Code == CodeCanceled {
		// This caller left (its deadline passed, or it cancelled) and was
		// the last one: the shared run was cancelled because of it, so the
		// answer is the caller's own reason, DEADLINE_EXCEEDED on a
		// deadline (docs/protocol.md §5).
		return nil, status.AsError(ctx.Err())
	}
	return res, status.AsError(err)
}

// exec runs the handler, turning a panic into INTERNAL, between the
// observers' handlerBegan and handlerEnded.
func (s *Server) exec(ctx context.Context, adm *admitted) (result json.RawMessage, err *status.Error) {
	a := adm.action
	s.obs.handlerBegan(a)
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			s.opts.logger.Error("socket: handler panicked", "action", a.name, "panic", p, "stack", string(debug.Stack()))
			result, err = nil, Errorf(CodeInternal, "internal error")
		}
		s.obs.handlerEnded(a, time.Since(start), err)
	}()
	res, herr := a.handler.ServeAction(ctx, &adm.req)
	if herr != nil {
		e := withoutDrainingReason(status.AsError(herr))
		// The cause is logged here and never sent.
		switch cause := e.Unwrap(); {
		case cause == nil:
		case e.Code == CodeInternal:
			s.opts.logger.Error("socket: handler failed", "action", a.name, "err", cause)
		default:
			s.opts.logger.Warn("socket: handler failed", "action", a.name, "code", e.Code, "err", cause)
		}
		return nil, e
	}
	if ctxErr := ctx.Err(); ctxErr != nil && res == nil {
		return nil, status.AsError(ctxErr)
	}
	return res, nil
}

// errOrNil keeps a nil *status.Error from becoming a non-nil error.
func errOrNil(e *status.Error) error {
	if e == nil {
		return nil
	}
	return e
}

// grpcService adapts Server to the generated service interface.
type grpcService struct {
	socketv1.UnimplementedSocketServiceServer
	s *Server
}

func (g grpcService) Connect(gs grpc.BidiStreamingServer[socketv1.ConnectRequest, socketv1.ConnectResponse]) error {
	return g.s.connect(gs)
}

func (g grpcService) Call(ctx context.Context, in *socketv1.CallRequest) (*socketv1.CallResponse, error) {
	s := g.s
	key, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return &socketv1.CallResponse{Response: s.call(ctx, key, in.GetRequest())}, nil
}

func (g grpcService) Describe(ctx context.Context, _ *socketv1.DescribeRequest) (*socketv1.DescribeResponse, error) {
	s := g.s
	key, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return s.describe(key), nil
}

// describe is the server's catalogue as key may see it; a nil key sees
// every action.
func (s *Server) describe(key *keyring.Entry) *socketv1.DescribeResponse {
	out := &socketv1.DescribeResponse{Service: s.cfg.Name, Version: s.cfg.Version, Instance: s.instance}
	for _, a := range s.actions {
		if key != nil && !key.MayCall(a.name) {
			continue
		}
		kind := socketv1.ActionKind_ACTION_KIND_WRITE
		if a.spec.read {
			kind = socketv1.ActionKind_ACTION_KIND_READ
		}
		out.Actions = append(out.Actions, &socketv1.Action{
			Name:       a.name,
			Kind:       kind,
			Idempotent: a.spec.idempotent,
			CacheTtl:   durationpb.New(a.spec.cacheTTL),
			Versions:   a.spec.versions,
			Timeout:    durationpb.New(a.spec.timeout),
			Doc:        a.spec.doc,
			Public:     a.spec.public,
			Stats:      a.stats.snapshot(),
		})
	}
	sort.Slice(out.Actions, func(i, j int) bool { return out.Actions[i].Name < out.Actions[j].Name })
	return out
}

// withoutDrainingReason keeps a handler from passing on the draining reason
// it got from another service: that reason promises the action did not
// run, which only the runtime can say.
func withoutDrainingReason(e *status.Error) *status.Error {
	if e.Details[DetailReason] != ReasonDraining {
		return e
	}
	details := make(map[string]any, len(e.Details))
	for k, v := range e.Details {
		if k != DetailReason {
			details[k] = v
		}
	}
	return e.WithDetails(details)
}
