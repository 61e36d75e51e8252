package socket

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/internal/testhooks"
)

// ServerOption tunes a Server.
type ServerOption interface{ applyServer(*serverConfig) }

// DialOption tunes a Client.
type DialOption interface{ applyClient(*clientConfig) }

// Option tunes both servers and clients.
type Option interface {
	ServerOption
	DialOption
}

type serverConfig struct {
	keys           *Keyring
	noAuth         bool
	noCoalesce     bool
	flights        *coalesce.Group // a test's (testhooks.ServerFlights); nil: the server's own
	logger         *slog.Logger
	streamInFlight int
	serverInFlight int
	maxBody        int
	maxFrame       int
	drainTimeout   time.Duration
	grpcOptions    []grpc.ServerOption
	metrics        prometheus.Registerer // nil: no metrics
}

type clientConfig struct {
	key            string
	service        string
	logger         *slog.Logger
	maxFrame       int
	maxAttempts    int
	connectTimeout time.Duration
	backoffBase    time.Duration
	backoffMax     time.Duration
	readyWait      time.Duration
	noCoalesce     bool
	grpcOptions    []grpc.DialOption
}

const (
	defaultStreamInFlight = 1024
	defaultServerInFlight = 16384
	defaultMaxBody        = 1 << 20
	defaultMaxFrame       = 4 << 20
	defaultDrainTimeout   = 10 * time.Second
	defaultMaxAttempts    = 3
	defaultConnectTimeout = 10 * time.Second
	defaultBackoffBase    = 50 * time.Millisecond
	defaultBackoffMax     = 5 * time.Second
	defaultReadyWait      = 50 * time.Millisecond

	// resolveInterval is how often a client resolves its target's name
	// again to find new instances (besides when a connection fails).
	resolveInterval = 30 * time.Second
)

func defaultServerConfig() serverConfig {
	return serverConfig{
		logger:         slog.New(slog.DiscardHandler),
		streamInFlight: defaultStreamInFlight,
		serverInFlight: defaultServerInFlight,
		maxBody:        defaultMaxBody,
		maxFrame:       defaultMaxFrame,
		drainTimeout:   defaultDrainTimeout,
	}
}

func defaultClientConfig() clientConfig {
	return clientConfig{
		logger:         slog.New(slog.DiscardHandler),
		maxFrame:       defaultMaxFrame,
		maxAttempts:    defaultMaxAttempts,
		connectTimeout: defaultConnectTimeout,
		backoffBase:    defaultBackoffBase,
		backoffMax:     defaultBackoffMax,
		readyWait:      defaultReadyWait,
	}
}

type serverOptionFunc func(*serverConfig)

func (f serverOptionFunc) applyServer(c *serverConfig) { f(c) }

type dialOptionFunc func(*clientConfig)

func (f dialOptionFunc) applyClient(c *clientConfig) { f(c) }

type bothOption struct {
	serverOptionFunc
	dialOptionFunc
}

// WithLogger sets where the server or client logs what it cannot return as
// an error (handler panics, dropped streams). Default: discard.
func WithLogger(l *slog.Logger) Option {
	return bothOption{
		func(c *serverConfig) { c.logger = l },
		func(c *clientConfig) { c.logger = l },
	}
}

// WithMaxFrameSize bounds one gRPC message on the stream, in bytes.
// Default 4 MiB. A frame this side would send over it fails only its own
// request (a request: INVALID_ARGUMENT; an answer: INTERNAL in its place);
// a larger frame that arrives ends the stream with RESOURCE_EXHAUSTED, so
// both sides should use the same bound.
func WithMaxFrameSize(n int) Option {
	return bothOption{
		func(c *serverConfig) { c.maxFrame = n },
		func(c *clientConfig) { c.maxFrame = n },
	}
}

// WithServiceName names the service a client calls, for its error
// messages ("service users has no ready instance") and log lines. Default:
// the name the service's Describe gave, "the service" before one answered.
func WithServiceName(name string) DialOption {
	return dialOptionFunc(func(c *clientConfig) { c.service = name })
}

// WithKeys sets the keys the server accepts. A server needs WithKeys or
// WithoutAuth.
func WithKeys(k *Keyring) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.keys = k })
}

// WithoutAuth lets any caller in without a key, as principal "anonymous"
// allowed to delegate. For local development and tests only.
func WithoutAuth() ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.noAuth = true })
}

// WithoutCoalescing makes every read run its handler, even when an
// identical read is in flight. Default: identical reads in flight at the
// same moment (same action, id, body, API version and caller, or any
// caller for Public actions) share one handler run.
func WithoutCoalescing() ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.noCoalesce = true })
}

// WithMaxInFlight bounds the requests running at once on one stream and on
// the whole server. A frame beyond either bound is answered at once with
// RESOURCE_EXHAUSTED. Default 1024 per stream, 16384 per server.
func WithMaxInFlight(perStream, perServer int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		c.streamInFlight, c.serverInFlight = perStream, perServer
	})
}

// WithMaxBodySize bounds a request's body, in bytes. A larger body is
// answered with INVALID_ARGUMENT (reason "body_too_large") and the stream
// carries on. Default 1 MiB.
func WithMaxBodySize(n int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.maxBody = n })
}

// WithDrainTimeout bounds a graceful shutdown: how long in-flight requests
// may run after the drain frames went out before they are cancelled.
// Default 10s.
func WithDrainTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.drainTimeout = d })
}

// WithGRPCServerOptions passes options (TLS credentials, keepalive) to the
// underlying grpc.Server.
func WithGRPCServerOptions(opts ...grpc.ServerOption) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		for _, o := range opts {
			if h, ok := o.(testhooks.ServerFlights); ok {
				c.flights = h.Group
			}
		}
		c.grpcOptions = append(c.grpcOptions, opts...)
	})
}

// WithKey sets the key the client presents on every stream.
func WithKey(secret string) DialOption {
	return dialOptionFunc(func(c *clientConfig) { c.key = secret })
}

// WithMaxAttempts bounds how many times one idempotent request is sent when
// streams break under it. Writes are never sent twice. Default 3.
func WithMaxAttempts(n int) DialOption {
	return dialOptionFunc(func(c *clientConfig) { c.maxAttempts = n })
}

// WithConnectTimeout bounds how long opening a stream to one instance may
// take before it counts as failed and is retried with backoff. Default 10s.
func WithConnectTimeout(d time.Duration) DialOption {
	return dialOptionFunc(func(c *clientConfig) { c.connectTimeout = d })
}

// WithBackoff sets the reconnect backoff: the first delay and the cap. The
// delay doubles after each failed attempt, with ±20% jitter, and never
// exceeds max however long an instance stays down, so a restarted instance
// gets traffic again within max of coming back. Default 50ms, 5s.
func WithBackoff(base, max time.Duration) DialOption {
	return dialOptionFunc(func(c *clientConfig) { c.backoffBase, c.backoffMax = base, max })
}

// WithReadyWait bounds how long a request waits for a ready stream when
// every instance is failing: it waits only while a reconnect is under way
// or due within d, and at most d, then fails with UNAVAILABLE, reason
// "no_ready_instance" and a "retry_after_ms" hint (the time until the next
// reconnect attempt, from 100ms to the backoff cap); with every instance
// in a longer backoff it fails at once. A request never waits longer than
// its context allows. While an instance's first connection attempt is
// under way, requests wait for it (bounded by WithConnectTimeout) instead.
// Default 50ms.
func WithReadyWait(d time.Duration) DialOption {
	return dialOptionFunc(func(c *clientConfig) { c.readyWait = d })
}

// WithoutClientCoalescing sends every read, even when an identical read is in
// flight. Default: identical reads share one request (see Request).
func WithoutClientCoalescing() DialOption {
	return dialOptionFunc(func(c *clientConfig) { c.noCoalesce = true })
}

// WithGRPCDialOptions passes options (TLS credentials, keepalive) to the
// underlying connections. Default: plaintext.
func WithGRPCDialOptions(opts ...grpc.DialOption) DialOption {
	return dialOptionFunc(func(c *clientConfig) { c.grpcOptions = append(c.grpcOptions, opts...) })
}
